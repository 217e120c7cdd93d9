// Package freeport picks loopback TCP addresses for tests that must name an
// address before the server that binds it starts (raft peers, config files).
//
// An address is only free at the moment it is picked: something else on the
// machine may take it before the test binds it. What this package does
// guarantee is that the addresses of one Addrs call are distinct, because all
// their listeners stay open until the last one is picked.
package freeport

import (
	"net"
	"testing"
)

// Addr returns one loopback host:port nothing listened on a moment ago.
func Addr(t testing.TB) string {
	t.Helper()
	return Addrs(t, 1)[0]
}

// Addrs returns n distinct loopback host:port addresses nothing listened on a
// moment ago.
func Addrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("freeport: %v", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}
