package metricsrv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/test/testpki"
)

// serveTLS starts a metrics server with files and returns its address.
func serveTLS(t *testing.T, files TLSFiles) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "edged_test_total", Help: "test"})
	reg.MustRegister(c)
	srv, err := Listen("127.0.0.1:0", files, reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv.Addr()
}

// client trusts ca and presents the pair, when given.
func client(t *testing.T, caFile, certFile, keyFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	tc := &tls.Config{RootCAs: pool}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func fetch(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestTLS does real handshakes: HTTPS with a server certificate, plain
// HTTP refused, and with a client CA only clients with its certificate
// served.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir, "metrics")
	other := testpki.New(t, filepath.Join(dir, "other"), "other")
	loopback := netip.MustParseAddr("127.0.0.1")
	cert, key := ca.Node(t, "edge1", loopback)
	scraper, scraperKey := ca.Node(t, "prometheus", loopback)
	stranger, strangerKey := other.Node(t, "stranger", loopback)

	t.Run("server certificate", func(t *testing.T) {
		addr := serveTLS(t, TLSFiles{CertFile: cert, KeyFile: key})
		body, err := fetch(client(t, ca.CAFile, "", ""), "https://"+addr+"/metrics")
		if err != nil || !strings.Contains(body, "edged_test_total 0") {
			t.Fatalf("https /metrics = %q, %v", body, err)
		}
		if body, err := fetch(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics"); err == nil && strings.Contains(body, "edged_test_total") {
			t.Errorf("plain HTTP served the metrics of an HTTPS endpoint: %q", body)
		}
	})
	t.Run("client certificates", func(t *testing.T) {
		addr := serveTLS(t, TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: ca.CAFile})
		url := "https://" + addr + "/metrics"
		if body, err := fetch(client(t, ca.CAFile, scraper, scraperKey), url); err != nil || !strings.Contains(body, "edged_test_total") {
			t.Errorf("client with a certificate of the CA: %q, %v", body, err)
		}
		if _, err := fetch(client(t, ca.CAFile, "", ""), url); err == nil {
			t.Error("client without a certificate was served")
		}
		if _, err := fetch(client(t, ca.CAFile, stranger, strangerKey), url); err == nil {
			t.Error("client with another CA's certificate was served")
		}
	})
	t.Run("renewed certificate served without restart", func(t *testing.T) {
		rdir := t.TempDir()
		rc, rk := filepath.Join(rdir, "c.pem"), filepath.Join(rdir, "k.pem")
		copyFile(t, cert, rc)
		copyFile(t, key, rk)
		addr := serveTLS(t, TLSFiles{CertFile: rc, KeyFile: rk})
		if got := servedCN(t, ca.CAFile, addr); got != "edge1" {
			t.Fatalf("served CN %q, want edge1", got)
		}
		newCert, newKey := ca.Node(t, "edge1-renewed", loopback)
		copyFile(t, newCert, rc)
		copyFile(t, newKey, rk)
		future := time.Now().Add(time.Minute) // a later mtime, however coarse the clock
		for _, p := range []string{rc, rk} {
			if err := os.Chtimes(p, future, future); err != nil {
				t.Fatal(err)
			}
		}
		if got := servedCN(t, ca.CAFile, addr); got != "edge1-renewed" {
			t.Errorf("after renewal served CN %q, want edge1-renewed", got)
		}
	})
}

func servedCN(t *testing.T, caFile, addr string) string {
	t.Helper()
	c := client(t, caFile, "", "")
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	c.CloseIdleConnections()
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSFilesRefused checks that Listen and Check refuse unusable files,
// naming the field.
func TestTLSFilesRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir, "metrics")
	cert, key := ca.Node(t, "edge1", netip.MustParseAddr("127.0.0.1"))
	_, otherKey := ca.Node(t, "edge2", netip.MustParseAddr("127.0.0.1"))
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files TLSFiles
		field string
	}{
		{"key without certificate", TLSFiles{KeyFile: key}, "certFile"},
		{"certificate without key", TLSFiles{CertFile: cert}, "keyFile"},
		{"client CA alone", TLSFiles{ClientCAFile: ca.CAFile}, "certFile"},
		{"missing certificate file", TLSFiles{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: key}, "certFile"},
		{"key of another certificate", TLSFiles{CertFile: cert, KeyFile: otherKey}, "certFile"},
		{"client CA without a certificate", TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: empty}, "clientCAFile"},
		{"missing client CA", TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "nope.pem")}, "clientCAFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.files.Check()
			var fe *TLSFileError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Check() = %v, want a TLSFileError for %s", err, tc.field)
			}
			if _, err := Listen("127.0.0.1:0", tc.files, prometheus.NewRegistry(), nil, nil); err == nil {
				t.Error("Listen accepted the files")
			}
		})
	}
}
