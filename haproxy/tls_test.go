package haproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/testpki"
)

// mintPEM returns a self-signed certificate and key as one PEM, plus the
// certificate's serial number.
func mintPEM(t *testing.T, cn string) ([]byte, *big.Int) {
	t.Helper()
	crt, key := testpki.SelfSigned(t, cn)
	blk, _ := pem.Decode(crt)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return append(crt, key...), c.SerialNumber
}

func TestTLSTermination(t *testing.T) {
	l := mustLab(t)
	a := mustBackend(t, "a")
	pemData, serial := mintPEM(t, "web.edged.test")
	certFile := filepath.Join(t.TempDir(), "default_web-tls.pem")
	if _, err := WriteFileAtomic(certFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(testVIP(11), freePort(t, "127.0.0.1"))
	m := Model{
		Frontends: []Frontend{{Name: "tls", Bind: vip, Backend: "web", CertFile: certFile}},
		Backends:  []Backend{{Name: "web", Servers: []Server{{Addr: a.addr}}}},
	}
	if r := NewManager(ManagerConfig{Paths: l.paths}).Apply(context.Background(), m); r.Err != nil {
		t.Fatal(r.Err)
	}
	var got *big.Int
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // self-signed; the serial is checked below
		ServerName:         "web.edged.test",
		VerifyConnection: func(cs tls.ConnectionState) error {
			got = cs.PeerCertificates[0].SerialNumber
			return nil
		},
	}}}
	resp, err := client.Get("https://" + vip.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "a" || got == nil || got.Cmp(serial) != 0 {
		t.Errorf("got body %q serial %v, want %q serial %v", body, got, "a", serial)
	}
}

// TestInvalidateCert reloads only for a certificate the loaded config uses.
func TestInvalidateCert(t *testing.T) {
	l := mustLab(t)
	a := mustBackend(t, "a")
	pemData, _ := mintPEM(t, "web.edged.test")
	certFile := filepath.Join(t.TempDir(), "default_web-tls.pem")
	if _, err := WriteFileAtomic(certFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(testVIP(13), freePort(t, "127.0.0.1"))
	m := Model{
		Frontends: []Frontend{{Name: "tls", Bind: vip, Backend: "web", CertFile: certFile}},
		Backends:  []Backend{{Name: "web", Servers: []Server{{Addr: a.addr}}}},
	}
	mgr := NewManager(ManagerConfig{Paths: l.paths})
	if r := mgr.Apply(context.Background(), m); r.Err != nil {
		t.Fatal(r.Err)
	}
	mgr.InvalidateCert(certFile + ".unused")
	if mgr.Structural(m) {
		t.Error("an unused certificate made the model structural")
	}
	mgr.InvalidateCert(certFile)
	if !mgr.Structural(m) {
		t.Error("a loaded certificate changed but the model is not structural")
	}
}
