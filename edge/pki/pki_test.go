package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustInit(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if _, err := Init(dir, "edged raft CA", DefaultCAValidity); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIssueNamesTheNode(t *testing.T) {
	dir := mustInit(t)
	got, err := Issue(dir, "edge1", []netip.Addr{netip.MustParseAddr("10.4.0.11")}, DefaultHostValidity, Owner{Gid: -1})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Cert
	if c.Subject.CommonName != "edge1" {
		t.Errorf("CN = %q, want edge1", c.Subject.CommonName)
	}
	if diff := cmp.Diff([]string{"edge1"}, c.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage); diff != "" {
		t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
	}
	for path, want := range map[string]os.FileMode{got.KeyFile: 0o600, got.CertFile: 0o644, filepath.Join(dir, CAKey): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// TestMutualTLS: two issued hosts complete raft's kind of handshake (both
// sides present and verify a certificate against the CA) and each sees the
// other's node name in the certificate.
func TestMutualTLS(t *testing.T) {
	dir := mustInit(t)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	load := func(node string) tls.Certificate {
		is, err := Issue(dir, node, nil, time.Hour, Owner{Gid: -1})
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.LoadX509KeyPair(is.CertFile, is.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srvCert, cliCert := load("edge1"), load("edge2")
	a, b := net.Pipe()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13})
	cli := tls.Client(b, &tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: pool, ServerName: "edge1", MinVersion: tls.VersionTLS13})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if cn := srv.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "edge2" {
		t.Errorf("server sees CN %q, want edge2", cn)
	}
	cli.Close()
	srv.Close()
}

func TestNeverOverwrites(t *testing.T) {
	dir := mustInit(t)
	if _, err := Init(dir, "again", time.Hour); !errors.Is(err, ErrExists) {
		t.Errorf("second Init: %v, want ErrExists", err)
	}
	if _, err := Issue(dir, "edge1", nil, time.Hour, Owner{Gid: -1}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "edge1.key"))
	if _, err := Issue(dir, "edge1", nil, time.Hour, Owner{Gid: -1}); !errors.Is(err, ErrExists) {
		t.Errorf("second Issue: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "edge1.key"))
	if string(before) != string(after) {
		t.Error("a refused Issue changed the key")
	}
}

func TestIssueRefuses(t *testing.T) {
	dir := mustInit(t)
	for _, name := range []string{"", "../etc/x", ".hidden", "a b", "-flag"} {
		if _, err := Issue(dir, name, nil, time.Hour, Owner{Gid: -1}); err == nil {
			t.Errorf("Issue(%q) succeeded", name)
		}
	}
	if _, err := Issue(t.TempDir(), "edge1", nil, time.Hour, Owner{Gid: -1}); err == nil {
		t.Error("Issue without a CA succeeded")
	}
}

// TestIssueWithinCA: a host certificate never outlives its CA.
func TestIssueWithinCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca, err := Init(dir, "short", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	is, err := Issue(dir, "edge1", nil, DefaultHostValidity, Owner{Gid: -1})
	if err != nil {
		t.Fatal(err)
	}
	if is.Cert.NotAfter.After(ca.NotAfter) {
		t.Errorf("host cert ends %v after the CA %v", is.Cert.NotAfter, ca.NotAfter)
	}
}
