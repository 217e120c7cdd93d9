package lbpool

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCurrent: Current answers "would Allocate change anything?" without
// changing anything, for the cases a controller's sync meets.
func TestCurrent(t *testing.T) {
	a, err := New([]Pool{mustPool(t, "p", "10.0.0.0/29"), mustPool(t, "q", "10.1.0.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	web := Request{Key: "ns/web", SharingKey: "k", Ports: []Port{{Protocol: "TCP", Port: 80}}, TrafficPolicyCluster: true}
	got, err := a.Allocate(web)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		same bool
	}{
		{"same request", web, true},
		{"unknown key", Request{Key: "ns/other"}, false},
		{"requested the held IP", with(web, func(r *Request) { r.IPs = got.IPs }), true},
		{"requested another IP", with(web, func(r *Request) { r.IPs = ips("10.0.0.5") }), false},
		{"another pool", with(web, func(r *Request) { r.Pool = "q" }), false},
		{"port added", with(web, func(r *Request) { r.Ports = append(r.Ports, Port{Protocol: "TCP", Port: 443}) }), false},
		{"sharing key changed", with(web, func(r *Request) { r.SharingKey = "" }), false},
		{"traffic policy changed", with(web, func(r *Request) { r.TrafficPolicyCluster = false }), false},
		{"dual stack asked", with(web, func(r *Request) { r.Families = []Family{IPv4, IPv6} }), false},
		{"labels changed", with(web, func(r *Request) { r.ServiceLabels = map[string]string{"tier": "gold"} }), false},
		{"empty labels are no labels", with(web, func(r *Request) { r.ServiceLabels = map[string]string{} }), true},
		{"invalid request", Request{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.Allocations()
			cur, ok := a.Current(tc.req)
			if ok != tc.same {
				t.Fatalf("Current = %v, %v; want unchanged=%v", cur, ok, tc.same)
			}
			if ok {
				if d := cmp.Diff(got, cur, cmpAddrs); d != "" {
					t.Errorf("Current (-want +got):\n%s", d)
				}
			}
			if d := cmp.Diff(before, a.Allocations(), cmpAddrs); d != "" {
				t.Errorf("Current changed the allocations (-before +after):\n%s", d)
			}
		})
	}
}

func with(r Request, f func(*Request)) Request {
	r.Ports = append([]Port(nil), r.Ports...)
	f(&r)
	return r
}

var cmpAddrs = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

// TestPoolEqual: pools compare by meaning (a nil and an empty list are the
// same pool), and a changed range is a different pool.
func TestPoolEqual(t *testing.T) {
	a := mustPool(t, "p", "10.0.0.0/29")
	b := a
	b.Ranges = append([]Range(nil), a.Ranges...)
	a.Allocation = &ServiceAllocation{Namespaces: nil}
	b.Allocation = &ServiceAllocation{Namespaces: []string{}}
	if !PoolsEqual([]Pool{a}, []Pool{b}) {
		t.Error("nil and empty namespace lists differ")
	}
	c := mustPool(t, "p", "10.0.0.0/30")
	if PoolEqual(a, c) || PoolsEqual([]Pool{a}, []Pool{a, c}) {
		t.Error("different ranges or counts compare equal")
	}
}
