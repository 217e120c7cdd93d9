package raft

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrTLS is wrapped by errors loading the TLS files.
var ErrTLS = errors.New("raft TLS setup")

// loadTLS builds the server and client configurations for mutual TLS: both
// sides present a certificate and verify the other's chain against the CA.
// Host names are not checked, because peers are dialled by address; the CA
// is the trust boundary, so give the group a CA of its own.
func loadTLS(f TLSFiles) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: load certFile %s / keyFile %s: %v", ErrTLS, f.CertFile, f.KeyFile, err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read caFile: %v", ErrTLS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("%w: caFile %s holds no PEM certificate", ErrTLS, f.CAFile)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	client = &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Always present our certificate, even when the server asks for
		// another CA, so a CA mismatch is logged as such on the server.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		// Chain verification without a host name check (see above).
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifyChain(pool),
	}
	return server, client, nil
}

// errUnknownCA is what a client reports for a server outside our CA.
var errUnknownCA = errors.New("peer certificate not signed by the raft CA")

func verifyChain(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errUnknownCA
		}
		certs := make([]*x509.Certificate, 0, len(raw))
		for _, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("%w: %v", errUnknownCA, err)
			}
			certs = append(certs, c)
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return fmt.Errorf("%w: %v", errUnknownCA, err)
		}
		return nil
	}
}
