// Package pki owns the raft group's certificate authority: `edged tls init`
// creates it and `edged tls issue NAME` signs a host certificate with it.
// It guarantees that a host certificate names exactly the node it is for
// (Subject CN and one DNS SAN equal to the node name, which is what raft
// binds a peer's lease renewals to, see raft/identity.go), is valid for both
// TLS client and server auth (raft connections are mutual), and that no
// existing key or certificate is ever overwritten. Keys are ECDSA P-256,
// written mode 0600 (0640 with a group, so the daemon's user can read its
// own key without owning it).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// File names in a PKI directory.
const (
	CACert = "ca.crt"
	CAKey  = "ca.key"
)

// Default lifetimes. The CA outlives many host certificates; a host
// certificate's expiry is the one date an operator must remember, so it
// comes from an explicit flag and is shown by Issue's result.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultHostValidity = 2 * 365 * 24 * time.Hour
)

// ErrExists is returned instead of overwriting a key or certificate.
var ErrExists = errors.New("already exists")

// nodeName is what raft accepts as a node ID that is also a safe file name
// and a DNS SAN: letters, digits, dot, dash, underscore, not starting with
// a dot or dash.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// Owner is who may read a written key besides root: Gid >= 0 makes keys
// mode 0640 with that group; -1 keeps them 0600.
type Owner struct{ Gid int }

// Init creates a CA named name in dir: dir/ca.crt and dir/ca.key (mode
// 0600 whatever owner says: only `edged tls issue` needs it, never the
// daemon). It refuses to replace an existing CA.
func Init(dir, name string, validity time.Duration) (*x509.Certificate, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{CACert, CAKey} {
		if err := absent(filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, CAKey), key, Owner{Gid: -1}); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CACert), pemBytes("CERTIFICATE", der), 0o644, -1); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Issued names the files Issue wrote.
type Issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// Issue signs a certificate for node with the CA in dir and writes
// dir/<node>.crt and dir/<node>.key. ips are added as IP SANs (raft does
// not check them; other tools may). It refuses to replace existing files.
func Issue(dir, node string, ips []netip.Addr, validity time.Duration, owner Owner) (Issued, error) {
	if !nodeName.MatchString(node) {
		return Issued{}, fmt.Errorf("node name %q: want 1-63 letters, digits, '.', '-' or '_', as node.name in edged.yaml", node)
	}
	ca, caKey, err := loadCA(dir)
	if err != nil {
		return Issued{}, err
	}
	out := Issued{CertFile: filepath.Join(dir, node+".crt"), KeyFile: filepath.Join(dir, node+".key")}
	for _, f := range []string{out.CertFile, out.KeyFile} {
		if err := absent(f); err != nil {
			return Issued{}, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: node}, DNSNames: []string{node},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter // a chain is valid only while every link is
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Issued{}, err
	}
	if err := writeKey(out.KeyFile, key, owner); err != nil {
		return Issued{}, err
	}
	if err := writeFile(out.CertFile, pemBytes("CERTIFICATE", der), 0o644, -1); err != nil {
		return Issued{}, err
	}
	out.Cert, err = x509.ParseCertificate(der)
	return out, err
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA (create it with `edged tls init`): %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA key (issue on the host that ran `edged tls init`): %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s: %s or %s holds no PEM block", dir, CACert, CAKey)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CACert, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CAKey, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", CAKey, CACert)
	}
	return cert, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey, owner Owner) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if owner.Gid >= 0 {
		mode = 0o640
	}
	return writeFile(path, pemBytes("EC PRIVATE KEY", der), mode, owner.Gid)
}

// writeFile creates path exclusively (never replacing a file), with mode
// and, for gid >= 0, that group, set before any byte is written.
func writeFile(path string, data []byte, mode os.FileMode, gid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w; remove it first to replace it", path, ErrExists)
		}
		return err
	}
	err = func() error {
		if gid >= 0 {
			if err := f.Chown(-1, gid); err != nil {
				return err
			}
		}
		if err := f.Chmod(mode); err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func absent(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w; remove it first to replace it", path, ErrExists)
	}
	return nil
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// serial is a random 127-bit serial number (RFC 5280 allows up to 20 bytes).
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}
