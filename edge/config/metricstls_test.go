package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldentooth/edged/test/testpki"
)

// TestMetricsTLS: metrics.tls loads good files and refuses unusable ones
// at load time, with the file, line and field.
func TestMetricsTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir, "metrics")
	cert, key := ca.Node(t, "edge1", netip.MustParseAddr("127.0.0.1"))
	_, otherKey := ca.Node(t, "edge2", netip.MustParseAddr("127.0.0.1"))
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, tls string) (*Config, error) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "edged.yaml")
		body := minimal + "metrics:\n  address: 127.0.0.1:7472\n  tls:\n" + tls
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	t.Run("accepted", func(t *testing.T) {
		c, err := load(t, fmt.Sprintf("    certFile: %s\n    keyFile: %s\n    clientCAFile: %s\n", cert, key, ca.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Metrics.TLS.Files(); got.CertFile != cert || got.KeyFile != key || got.ClientCAFile != ca.CAFile {
			t.Errorf("metrics.tls = %+v", got)
		}
	})
	for _, tc := range []struct {
		name, tls string
		want      []string
	}{
		{"key without certificate", fmt.Sprintf("    keyFile: %s\n", key), []string{"edged.yaml:7: metrics.tls.certFile", "empty"}},
		{"certificate without key", fmt.Sprintf("    certFile: %s\n", cert), []string{"edged.yaml:7: metrics.tls.keyFile", "empty"}},
		{"missing file", fmt.Sprintf("    certFile: %s\n    keyFile: %s\n", filepath.Join(dir, "nope.pem"), key), []string{"edged.yaml:7: metrics.tls.certFile", "no such file"}},
		{"key of another certificate", fmt.Sprintf("    certFile: %s\n    keyFile: %s\n", cert, otherKey), []string{"edged.yaml:7: metrics.tls.certFile", "private key does not match"}},
		{"client CA without a certificate", fmt.Sprintf("    certFile: %s\n    keyFile: %s\n    clientCAFile: %s\n", cert, key, junk), []string{"edged.yaml:9: metrics.tls.clientCAFile", "no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.tls)
			if err == nil {
				t.Fatal("Load accepted unusable metrics TLS files")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			rest := err.Error()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", err, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
