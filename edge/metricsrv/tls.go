package metricsrv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of an HTTPS metrics endpoint (MetalLB 0.16
// serves its metrics over HTTPS only; edged keeps plain HTTP unless these
// are set). ClientCAFile, when set, makes the server require a client
// certificate signed by one of its CAs (Prometheus's tls_config cert_file
// and key_file).
type TLSFiles struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// Enabled reports whether any file is named.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != "" }

// TLSFileError reports an unusable metrics TLS file: Field is the
// config key that names it (certFile, keyFile or clientCAFile).
type TLSFileError struct {
	Field string
	Err   error
}

func (e *TLSFileError) Error() string { return e.Err.Error() }
func (e *TLSFileError) Unwrap() error { return e.Err }

func fileErr(field, format string, a ...any) error {
	return &TLSFileError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Check loads the files once: the certificate and key must form a pair
// and the client CA file must hold at least one certificate. Config
// validation calls it, so a bad file is refused at load time, not at the
// first scrape.
func (f TLSFiles) Check() error {
	_, _, err := f.load()
	return err
}

func (f TLSFiles) load() (*tls.Certificate, *x509.CertPool, error) {
	if f.CertFile == "" {
		return nil, nil, fileErr("certFile", "empty: name the server certificate (keyFile or clientCAFile is set)")
	}
	if f.KeyFile == "" {
		return nil, nil, fileErr("keyFile", "empty: name the private key of certFile")
	}
	pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, nil, fileErr("certFile", "%s with keyFile %s: %w", f.CertFile, f.KeyFile, err)
	}
	if f.ClientCAFile == "" {
		return &pair, nil, nil
	}
	b, err := os.ReadFile(f.ClientCAFile)
	if err != nil {
		return nil, nil, fileErr("clientCAFile", "%w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, nil, fileErr("clientCAFile", "%s: no PEM certificate in it", f.ClientCAFile)
	}
	return &pair, pool, nil
}

// tlsConfig returns the server's TLS settings. The certificate is read
// again when its files change (a renewed certificate is served without a
// restart; a broken renewal keeps the last good pair and logs nothing
// here: Check at the next reload says what is wrong). The client CA is
// read once: changing it needs a restart, like the address.
func (f TLSFiles) tlsConfig() (*tls.Config, error) {
	stamp := f.stamp() // before reading, as get does: a renewal in between is seen later
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	r := &certReloader{files: f, cur: pair, stamp: stamp}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if pool != nil {
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// stamp identifies the certificate files' current content cheaply.
func (f TLSFiles) stamp() [2]time.Time {
	var s [2]time.Time
	for i, p := range []string{f.CertFile, f.KeyFile} {
		if fi, err := os.Stat(p); err == nil {
			s[i] = fi.ModTime()
		}
	}
	return s
}

// certReloader serves the newest good certificate pair.
type certReloader struct {
	files TLSFiles
	mu    sync.Mutex
	cur   *tls.Certificate
	stamp [2]time.Time
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.files.stamp(); s != r.stamp {
		if pair, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile); err == nil {
			r.cur, r.stamp = &pair, s
		}
	}
	return r.cur, nil
}
