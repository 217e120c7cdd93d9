package raft

import (
	"net/netip"
	"testing"

	"github.com/goldentooth/edged/test/testpki"
)

// testCA is a throwaway certificate authority for mutual TLS tests.
type testCA struct{ *testpki.CA }

func mustCA(t testing.TB, name string) *testCA {
	t.Helper()
	return &testCA{testpki.New(t, t.TempDir(), name)}
}

// node mints a certificate for id (valid for client and server auth, with
// 127.0.0.1 as IP SAN) and returns the files.
func (ca *testCA) node(t testing.TB, id string) TLSFiles {
	t.Helper()
	cert, key := ca.Node(t, id, netip.MustParseAddr("127.0.0.1"))
	return TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.CAFile}
}
