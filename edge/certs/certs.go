// Package certs owns the certificate files edged writes for HAProxy: one
// PEM (certificate then key) per kubernetes.io/tls Secret that a Service
// names, in edged's own certDir. It guarantees that a file is written only
// from a pair Go's crypto/tls accepts (an unusable Secret never replaces a
// working file), atomically and only when the content changed, readable by
// its owner only, under a name that fits HAProxy's limits whatever the
// Secret's name; and that RemoveStale deletes what no frontend uses, so a
// deleted Secret's key leaves the host.
package certs

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/goldentooth/edged/haproxy"
	corev1 "k8s.io/api/core/v1"
)

// ErrSecret reports a Secret that is not a usable kubernetes.io/tls Secret.
var ErrSecret = errors.New("unusable TLS secret")

// pemMode keeps private keys readable by root (HAProxy reads certificates
// before dropping privileges) only.
const pemMode = 0o600

// Write writes a kubernetes.io/tls Secret's certificate and key as
// one PEM file (HAProxy's crt format) under certDir, atomically and only
// when the content changed. It returns the path and whether it changed. A
// Secret whose certificate and key do not form a valid pair is refused
// (ErrSecret) and the existing file is left as it is.
func Write(certDir string, s corev1.Secret) (string, bool, error) {
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if s.Type != corev1.SecretTypeTLS || len(crt) == 0 || len(key) == 0 {
		return "", false, fmt.Errorf("secret %s/%s: want type %s with %s and %s: %w",
			s.Namespace, s.Name, corev1.SecretTypeTLS, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, ErrSecret)
	}
	// A pair HAProxy cannot load would fail the next validation and, on a
	// Secret update, replace a working PEM: refuse it here, keep the old file.
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return "", false, fmt.Errorf("secret %s/%s: %v: %w", s.Namespace, s.Name, err, ErrSecret)
	}
	if !nameRE.MatchString(s.Name) || !nameRE.MatchString(s.Namespace) {
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
	path := Path(certDir, s.Namespace, s.Name)
	changed, err := haproxy.WriteFileAtomic(path, buf.Bytes(), pemMode)
	if err == nil {
		noteExpiry(path, s.Namespace, s.Name, pair.Leaf)
	}
	return path, changed, err
}

// RemoveStale deletes the PEM files in certDir (edged's own directory:
// only "*.pem" files directly in it) that keep does not hold, so a deleted
// Secret's key leaves the host and a namespace re-created under the same
// name never inherits it. It returns the paths it removed.
func RemoveStale(certDir string, keep map[string]bool) ([]string, error) {
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
		forgetExpiry(path)
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// nameRE is a Kubernetes object name (DNS subdomain): the only names whose
// files Write creates.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// maxFile bounds a PEM file's name, so Path stays far below HAProxy's
// 255-byte path limit under a certDir of up to 128 bytes (the limit config
// validation enforces).
const maxFile = 100

// Path is where Write stores a Secret's PEM:
// <certDir>/<namespace>_<secret>.pem, shortened with a hash like a section
// name (haproxy.FitName) when long (a Secret name may have 253 characters).
// Kubernetes names cannot hold "_", so two Secrets never share a file.
func Path(certDir, namespace, secret string) string {
	return filepath.Join(certDir, haproxy.FitName(namespace+"_"+secret, maxFile-len(".pem"))+".pem")
}
