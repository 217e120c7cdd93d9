package lbpool

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStaticPoolFencesServices: a static VIP's pool hands its address to
// the static request only; a Service never gets it, whether it asks for
// nothing (auto-assign), for the pool or for the address by name.
func TestStaticPoolFencesServices(t *testing.T) {
	stats := StaticPool("stats", ip("10.4.10.5"))
	// The static address must not overlap a Service pool: ValidatePools
	// (and config validation before it) refuses that.
	if _, err := New([]Pool{mustPool(t, "primary", "10.4.10.0/24"), stats}); !errors.Is(err, ErrInvalidPool) {
		t.Fatalf("New with the static address inside a Service pool = %v, want ErrInvalidPool", err)
	}
	a := mustNew(t, mustPool(t, "primary", "10.4.11.0 - 10.4.11.1"), stats)
	for _, tc := range []struct {
		name string
		req  Request
		want error
	}{
		{"the pool by name", Request{Key: "ns/a", Namespace: "ns", Pool: stats.Name}, ErrNotEligible},
		{"the address by name", Request{Key: "ns/b", Namespace: "ns", IPs: ips("10.4.10.5")}, ErrNotEligible},
		{"a namespace spelled like the prefix", Request{Key: "ns/c", Namespace: "edged-static", IPs: ips("10.4.10.5")}, ErrNotEligible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Allocate(tc.req); !errors.Is(err, tc.want) {
				t.Errorf("Allocate = %v, want %v", err, tc.want)
			}
		})
	}
	for i := 0; i < 2; i++ {
		al, err := a.Allocate(Request{Key: key(i), Namespace: "ns"})
		if err != nil || al.Pool != "primary" {
			t.Fatalf("auto-assign %d = %+v, %v; want an address of primary", i, al, err)
		}
	}
	if _, err := a.Allocate(Request{Key: "ns/full", Namespace: "ns"}); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("auto-assign with primary full = %v, want ErrPoolExhausted (never the static address)", err)
	}
	reqs := StaticRequests(a.Pools())
	if len(reqs) != 1 {
		t.Fatalf("StaticRequests = %+v, want one", reqs)
	}
	got, err := a.Allocate(reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := Allocation{Key: "edged-static:stats", Pool: "edged-static:stats", IPs: ips("10.4.10.5")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("static allocation (-want +got):\n%s", diff)
	}
	if cur, ok := a.Current(reqs[0]); !ok || !cur.IPs[0].IsValid() {
		t.Errorf("Current(static request) = %+v, %t; want the allocation unchanged", cur, ok)
	}
}

func TestStaticNames(t *testing.T) {
	for _, tc := range []struct {
		in     string
		name   string
		static bool
	}{
		{"edged-static:stats", "stats", true},
		{"monitoring/grafana", "", false},
		{"edged-static", "", false},
		{"primary", "", false},
	} {
		name, ok := StaticName(tc.in)
		if ok != tc.static || name != tc.name || IsStatic(tc.in) != tc.static {
			t.Errorf("StaticName(%q) = %q, %t; IsStatic %t; want %q, %t", tc.in, name, ok, IsStatic(tc.in), tc.name, tc.static)
		}
	}
	if k := StaticKey("api"); k != "edged-static:api" {
		t.Errorf("StaticKey(api) = %q", k)
	}
}
