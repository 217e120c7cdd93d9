package lbconfig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/goldentooth/edged/haproxy"
	corev1 "k8s.io/api/core/v1"
)

// ErrSecret reports a Secret that is not a usable kubernetes.io/tls Secret.
var ErrSecret = errors.New("unusable TLS secret")

// pemMode keeps private keys readable by root (HAProxy reads certificates
// before dropping privileges) only.
const pemMode = 0o600

// WriteTLSSecret writes a kubernetes.io/tls Secret's certificate and key as
// one PEM file (HAProxy's crt format) under certDir, atomically and only
// when the content changed. It returns the path and whether it changed. A
// Secret whose certificate and key do not form a valid pair is refused
// (ErrSecret) and the existing file is left as it is.
func WriteTLSSecret(certDir string, s corev1.Secret) (string, bool, error) {
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if s.Type != corev1.SecretTypeTLS || len(crt) == 0 || len(key) == 0 {
		return "", false, fmt.Errorf("secret %s/%s: want type %s with %s and %s: %w",
			s.Namespace, s.Name, corev1.SecretTypeTLS, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, ErrSecret)
	}
	// A pair HAProxy cannot load would fail the next validation and, on a
	// Secret update, replace a working PEM: refuse it here, keep the old file.
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		return "", false, fmt.Errorf("secret %s/%s: %v: %w", s.Namespace, s.Name, err, ErrSecret)
	}
	if !secretRE.MatchString(s.Name) || !secretRE.MatchString(s.Namespace) {
		return "", false, fmt.Errorf("secret %s/%s: bad name: %w", s.Namespace, s.Name, ErrSecret)
	}
	var buf bytes.Buffer
	buf.Write(bytes.TrimSpace(crt))
	buf.WriteByte('\n')
	buf.Write(bytes.TrimSpace(key))
	buf.WriteByte('\n')
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return "", false, fmt.Errorf("cert dir: %w", err)
	}
	path := CertPath(certDir, s.Namespace, s.Name)
	changed, err := haproxy.WriteFileAtomic(path, buf.Bytes(), pemMode)
	return path, changed, err
}

// RemoveStaleCerts deletes the PEM files in certDir (edged's own directory:
// only "*.pem" files directly in it) that keep does not hold, so a deleted
// Secret's key leaves the host and a namespace re-created under the same
// name never inherits it. It returns the paths it removed.
func RemoveStaleCerts(certDir string, keep map[string]bool) ([]string, error) {
	found, err := filepath.Glob(filepath.Join(certDir, "*.pem"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", certDir, err)
	}
	var removed []string
	var errs []error
	for _, path := range found {
		if keep[path] {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove stale certificate: %w", err))
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}
