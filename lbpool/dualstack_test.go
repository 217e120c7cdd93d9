package lbpool

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPreferDualStack: with ipFamilyPolicy PreferDualStack a family the
// chosen pool cannot give is left out instead of failing (MetalLB >= 0.14.9),
// and the pool is chosen as MetalLB's findBestPoolForService does: the first
// (by priority) giving every family, else the first giving the first family,
// else the first giving the second. RequireDualStack still fails.
func TestPreferDualStack(t *testing.T) {
	four := mustPool(t, "four", "10.0.0.0/30")
	dual := mustPool(t, "dual", "10.6.0.0/30", "fd00:6::/126")
	tiny := mustPool(t, "tiny", "10.7.0.0/30", "fd00:7::/128")
	six := mustPool(t, "six", "fd00:8::/126")
	prio := func(p Pool, n int) Pool { p.Allocation = &ServiceAllocation{Priority: intp(n)}; return p }
	v4v6, v6v4 := []Family{IPv4, IPv6}, []Family{IPv6, IPv4}
	prefer := func(key string, fams []Family) Request {
		return Request{Key: key, Families: fams, PreferDualStack: true}
	}
	tests := []struct {
		name  string
		pools []Pool
		steps []step
	}{
		{name: "v4-only pool gives v4", pools: []Pool{four}, steps: []step{
			{req: prefer("a/1", v4v6), wantIPs: ips("10.0.0.0"), wantPool: "four"},
			{req: prefer("a/2", v6v4), wantIPs: ips("10.0.0.1")},
			{req: Request{Key: "a/3", Families: v4v6}, wantErr: ErrPoolExhausted}, // RequireDualStack
		}},
		{name: "requested pool without the family", pools: []Pool{four, dual}, steps: []step{
			{req: with(prefer("a/1", v4v6), func(r *Request) { r.Pool = "four" }), wantIPs: ips("10.0.0.0")},
			{req: with(prefer("a/2", v4v6), func(r *Request) { r.Pool = "dual" }), wantIPs: ips("10.6.0.0", "fd00:6::")},
		}},
		{name: "requested address in a v4-only pool", pools: []Pool{four}, steps: []step{
			{req: with(prefer("a/1", v4v6), func(r *Request) { r.IPs = ips("10.0.0.2") }), wantIPs: ips("10.0.0.2")},
		}},
		{name: "a pool with both families beats an earlier one with one", pools: []Pool{prio(four, 1), prio(dual, 2)}, steps: []step{
			{req: prefer("a/1", v4v6), wantPool: "dual", wantIPs: ips("10.6.0.0", "fd00:6::")},
			{req: Request{Key: "a/2"}, wantPool: "four", wantIPs: ips("10.0.0.0")},
		}},
		{name: "first family's pool before the second's", pools: []Pool{prio(six, 1), prio(four, 2)}, steps: []step{
			{req: prefer("a/1", v4v6), wantPool: "four", wantIPs: ips("10.0.0.0")},
			{req: prefer("a/2", v6v4), wantPool: "six", wantIPs: ips("fd00:8::")},
		}},
		{name: "second family when no pool gives the first", pools: []Pool{six}, steps: []step{
			{req: prefer("a/1", v4v6), wantIPs: ips("fd00:8::")},
		}},
		{name: "one family exhausted", pools: []Pool{tiny}, steps: []step{
			{req: Request{Key: "a/v6", Families: []Family{IPv6}}, wantIPs: ips("fd00:7::")},
			{req: prefer("a/1", v4v6), wantIPs: ips("10.7.0.0")},
			{req: Request{Key: "a/2", Families: v4v6}, wantErr: ErrPoolExhausted},
		}},
		{name: "nothing at all still fails", pools: []Pool{mustPool(t, "one", "10.9.0.0/32")}, steps: []step{
			{req: prefer("a/1", v4v6), wantIPs: ips("10.9.0.0")},
			{req: prefer("a/2", v4v6), wantErr: ErrPoolExhausted},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, mustNew(t, tt.pools...), tt.steps)
		})
	}
}

// TestPreferDualStackKeepsAndGrows: an allocation lacking only families
// its pool cannot give is current (no reallocation, so no raft entry, on
// every resync); it gains the family, keeping its address, once its pool
// can give one (a range added, an address freed); an address outside every
// pool is kept as it is.
func TestPreferDualStackKeepsAndGrows(t *testing.T) {
	a := mustNew(t, mustPool(t, "p", "10.0.0.0/30", "fd00::/128"))
	req := Request{Key: "a/web", Families: []Family{IPv4, IPv6}, PreferDualStack: true}
	runSteps(t, a, []step{
		{req: Request{Key: "a/low"}, wantIPs: ips("10.0.0.0")},
		{req: Request{Key: "a/v6", Families: []Family{IPv6}}, wantIPs: ips("fd00::")},
		{req: req, wantIPs: ips("10.0.0.1")},
	})
	current := func(want bool) {
		t.Helper()
		if _, ok := a.Current(req); ok != want {
			t.Fatalf("Current = %v, want %v", ok, want)
		}
	}
	current(true)
	runSteps(t, a, []step{{release: "a/low"}})
	current(true) // a lower v4 freed: nothing to gain, nothing moves
	runSteps(t, a, []step{{release: "a/v6"}})
	current(false)
	runSteps(t, a, []step{{req: req, wantIPs: ips("10.0.0.1", "fd00::")}})
	current(true)

	// A pool edit that adds the family.
	b := mustNew(t, mustPool(t, "p", "10.0.0.0/30"))
	runSteps(t, b, []step{{req: req, wantIPs: ips("10.0.0.0")}})
	if err := b.SetPools([]Pool{mustPool(t, "p", "10.0.0.0/30", "fd00::/126")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Current(req); ok {
		t.Fatal("Current after the pool gained IPv6 = unchanged, want the family added")
	}
	runSteps(t, b, []step{{req: req, wantIPs: ips("10.0.0.0", "fd00::")}})
	// RequireDualStack on a key holding one family cannot be met: the old stays.
	c := mustNew(t, mustPool(t, "p", "10.0.0.0/30"))
	runSteps(t, c, []step{
		{req: req, wantIPs: ips("10.0.0.0")},
		{req: Request{Key: req.Key, Families: req.Families}, wantErr: ErrPoolExhausted},
		{req: req, wantIPs: ips("10.0.0.0")},
	})
	// The address left every pool: kept, not grown from a pool it is not in.
	if err := c.SetPools([]Pool{mustPool(t, "p", "10.1.0.0/30", "fd00::/126")}); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Current(req); !ok {
		t.Fatalf("Current after the pool moved away = changed, want %v kept", got.IPs)
	}
}

// TestPreferDualStackLog: raft log entries carry requests as JSON. One
// written before PreferDualStack existed decodes to the old behaviour, and
// a request that does not prefer encodes exactly as before.
func TestPreferDualStackLog(t *testing.T) {
	var old Request
	if err := json.Unmarshal([]byte(`{"Key":"a/1","Families":[4,6]}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.PreferDualStack {
		t.Error("an old entry decoded with PreferDualStack set")
	}
	if _, err := mustNew(t, mustPool(t, "p", "10.0.0.0/30")).Allocate(old); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("old dual-stack entry on a v4-only pool: %v, want ErrPoolExhausted", err)
	}
	b, err := json.Marshal(Request{Key: "a/1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "PreferDualStack") {
		t.Errorf("a request without PreferDualStack encodes %s", b)
	}
	var back Request
	b, _ = json.Marshal(Request{Key: "a/1", PreferDualStack: true})
	if err := json.Unmarshal(b, &back); err != nil || !back.PreferDualStack {
		t.Errorf("round trip of %s = %+v, %v", b, back, err)
	}
	if d := cmp.Diff(Request{Key: "a/1", PreferDualStack: true}, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}
