package certs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/test/testpki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	crt, key := testpki.SelfSigned(t, "web")
	s := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
	path, changed, err := Write(dir, s)
	if err != nil || !changed {
		t.Fatalf("first write = %v, %v", changed, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat = %v, %v; want mode 0600", st, err)
	}
	if _, changed, _ := Write(dir, s); changed {
		t.Error("unchanged secret rewritten")
	}
	good, _ := os.ReadFile(path)
	bad := s
	bad.Data = map[string][]byte{corev1.TLSCertKey: []byte("CERT"), corev1.TLSPrivateKeyKey: []byte("KEY")}
	if _, changed, err := Write(dir, bad); !errors.Is(err, ErrSecret) || changed {
		t.Errorf("garbage pair: changed=%v err=%v, want ErrSecret", changed, err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
		t.Error("a refused Secret replaced the working PEM")
	}
	s.Type = corev1.SecretTypeOpaque
	if _, _, err := Write(dir, s); !errors.Is(err, ErrSecret) {
		t.Errorf("opaque secret err = %v, want ErrSecret", err)
	}
}

// TestPathFits: a 253-character Secret name in a 63-character
// namespace gets a short, distinct PEM path that the renderer accepts.
func TestPathFits(t *testing.T) {
	dir := "/etc/haproxy/edged/certs"
	ns := strings.Repeat("n", 63)
	a, b := Path(dir, ns, strings.Repeat("a", 253)), Path(dir, ns, strings.Repeat("a", 252)+"b")
	if a == b || len(a) > len(dir)+1+maxFile || !haproxy.SafeValue(a) {
		t.Errorf("Path = %q, %q: want distinct safe paths of at most %d bytes", a, b, len(dir)+1+maxFile)
	}
	if got, want := Path(dir, "default", "web-tls"), dir+"/default_web-tls.pem"; got != want {
		t.Errorf("short name: %q, want %q (unchanged)", got, want)
	}
}

// TestRemoveStale deletes the PEM files not kept, and nothing else.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a_keep.pem", "b_gone.pem", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStale(dir, map[string]bool{filepath.Join(dir, "a_keep.pem"): true})
	if err != nil || !slices.Equal(removed, []string{filepath.Join(dir, "b_gone.pem")}) {
		t.Fatalf("RemoveStale = %v, %v; want only b_gone.pem", removed, err)
	}
	for f, want := range map[string]bool{"a_keep.pem": true, "b_gone.pem": false, "notes.txt": true} {
		if _, err := os.Stat(filepath.Join(dir, f)); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", f, err == nil, want)
		}
	}
}
