package lbpool

import (
	"net/netip"
	"testing"
)

func mustRange(t testing.TB, s string) Range {
	t.Helper()
	r, err := ParseRange(s)
	if err != nil {
		t.Fatalf("ParseRange(%q): %v", s, err)
	}
	return r
}

func mustPool(t testing.TB, name string, ranges ...string) Pool {
	t.Helper()
	p := Pool{Name: name, AutoAssign: true}
	for _, s := range ranges {
		p.Ranges = append(p.Ranges, mustRange(t, s))
	}
	return p
}

func mustNew(t testing.TB, pools ...Pool) *Allocator {
	t.Helper()
	a, err := New(pools)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ip(s))
	}
	return out
}

func intp(v int) *int { return &v }
