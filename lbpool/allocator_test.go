package lbpool

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const referenceRange = "10.4.11.0 - 10.4.15.254"

func TestReferencePoolCounts(t *testing.T) {
	p := mustPool(t, "primary", referenceRange)
	a := mustNew(t, p)
	if got := a.Stats()[0].TotalV4; got != 1279 {
		t.Errorf("reference pool holds %d addresses, want 1279", got)
	}
	p.AvoidBuggyIPs = true
	a = mustNew(t, p)
	if got := a.Stats()[0].TotalV4; got != 1270 {
		t.Errorf("reference pool with avoidBuggyIPs holds %d addresses, want 1270", got)
	}
	// And every one of the 1,270 can be handed out, none of them buggy.
	for i := 0; i < 1270; i++ {
		al, err := a.Allocate(Request{Key: key(i)})
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if b := al.IPs[0].As4()[3]; b == 0 || b == 255 {
			t.Fatalf("avoidBuggyIPs handed out %s", al.IPs[0])
		}
	}
	if _, err := a.Allocate(Request{Key: "ns/one-too-many"}); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("1,271st allocation error = %v, want ErrPoolExhausted", err)
	}
}

func key(i int) string { return "ns/svc-" + itoa(i) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

type step struct {
	req      Request
	release  string
	wantIPs  []netip.Addr
	wantPool string
	wantErr  error
}

func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.release != "" {
			if _, ok := a.Release(s.release); !ok {
				t.Fatalf("step %d: release %s: not held", i, s.release)
			}
			continue
		}
		got, err := a.Allocate(s.req)
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("step %d (%s): error = %v, want %v", i, s.req.Key, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.req.Key, err)
		}
		if diff := cmp.Diff(s.wantIPs, got.IPs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("step %d (%s): IPs (-want +got):\n%s", i, s.req.Key, diff)
		}
		if s.wantPool != "" && got.Pool != s.wantPool {
			t.Errorf("step %d (%s): pool = %q, want %q", i, s.req.Key, got.Pool, s.wantPool)
		}
	}
}

func TestAllocateRules(t *testing.T) {
	manual := mustPool(t, "manual", "10.9.0.0/30")
	manual.AutoAssign = false
	buggy := mustPool(t, "buggy", "10.8.0.255 - 10.8.1.1")
	buggy.AvoidBuggyIPs = true
	low := mustPool(t, "low", "10.1.0.0/30")
	low.Allocation = &ServiceAllocation{Priority: intp(10)}
	high := mustPool(t, "high", "10.2.0.0/30")
	high.Allocation = &ServiceAllocation{Priority: intp(1)}
	nsOnly := mustPool(t, "team", "10.3.0.0/30")
	nsOnly.Allocation = &ServiceAllocation{Priority: intp(0), Namespaces: []string{"team"},
		NamespaceSelectors: []Selector{{MatchLabels: map[string]string{"tier": "gold"}}}}
	svcSel := mustPool(t, "web", "10.5.0.0/30")
	svcSel.Allocation = &ServiceAllocation{Priority: intp(0), ServiceSelectors: []Selector{{
		MatchExpressions: []SelectorRequirement{{Key: "app", Operator: "In", Values: []string{"web"}}}}}}
	dual := mustPool(t, "dual", "10.6.0.0/30", "fd00:6::/126")
	dual.AutoAssign = false

	tests := []struct {
		name  string
		pools []Pool
		steps []step
	}{
		{name: "lowest free address first", pools: []Pool{mustPool(t, "p", "10.0.0.0/30")}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.1")},
			{release: "a/1"},
			{req: Request{Key: "a/3"}, wantIPs: ips("10.0.0.0")},
		}},
		{name: "idempotent", pools: []Pool{mustPool(t, "p", "10.0.0.0/30")}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.1")},
		}},
		{name: "exhausted", pools: []Pool{mustPool(t, "p", "10.0.0.0/31")}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.1")},
			{req: Request{Key: "a/3"}, wantErr: ErrPoolExhausted},
		}},
		{name: "autoAssign false only on request", pools: []Pool{manual}, steps: []step{
			{req: Request{Key: "a/1"}, wantErr: ErrNotEligible},
			{req: Request{Key: "a/1", Pool: "manual"}, wantIPs: ips("10.9.0.0")},
			{req: Request{Key: "a/2", IPs: ips("10.9.0.3")}, wantIPs: ips("10.9.0.3")},
		}},
		{name: "avoidBuggyIPs", pools: []Pool{buggy}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.8.1.1")},
			{req: Request{Key: "a/2"}, wantErr: ErrPoolExhausted},
			{req: Request{Key: "a/3", IPs: ips("10.8.1.0")}, wantErr: ErrNotInPool},
		}},
		{name: "priority lower first, unset last", pools: []Pool{mustPool(t, "none", "10.7.0.0/32"), low, high}, steps: []step{
			{req: Request{Key: "a/1"}, wantPool: "high", wantIPs: ips("10.2.0.0")},
			{req: Request{Key: "a/2", Pool: "low"}, wantPool: "low", wantIPs: ips("10.1.0.0")},
			{req: Request{Key: "a/3"}, wantPool: "high", wantIPs: ips("10.2.0.1")},
		}},
		{name: "priority falls through when full", pools: []Pool{low, mustPool(t, "none", "10.7.0.0/32")}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.1.0.0")}, {req: Request{Key: "a/2"}, wantIPs: ips("10.1.0.1")},
			{req: Request{Key: "a/3"}, wantIPs: ips("10.1.0.2")}, {req: Request{Key: "a/4"}, wantIPs: ips("10.1.0.3")},
			{req: Request{Key: "a/5"}, wantPool: "none", wantIPs: ips("10.7.0.0")},
		}},
		{name: "namespaces and namespace selectors", pools: []Pool{nsOnly, mustPool(t, "rest", "10.7.0.0/30")}, steps: []step{
			{req: Request{Key: "team/1", Namespace: "team"}, wantPool: "team", wantIPs: ips("10.3.0.0")},
			{req: Request{Key: "gold/1", Namespace: "gold", NamespaceLabels: map[string]string{"tier": "gold"}}, wantPool: "team", wantIPs: ips("10.3.0.1")},
			{req: Request{Key: "other/1", Namespace: "other"}, wantPool: "rest", wantIPs: ips("10.7.0.0")},
			{req: Request{Key: "other/2", Namespace: "other", Pool: "team"}, wantErr: ErrNotEligible},
		}},
		{name: "service selectors", pools: []Pool{svcSel, mustPool(t, "rest", "10.7.0.0/30")}, steps: []step{
			{req: Request{Key: "a/web", ServiceLabels: map[string]string{"app": "web"}}, wantPool: "web", wantIPs: ips("10.5.0.0")},
			{req: Request{Key: "a/db", ServiceLabels: map[string]string{"app": "db"}}, wantPool: "rest", wantIPs: ips("10.7.0.0")},
		}},
		{name: "specific IPs", pools: []Pool{mustPool(t, "p", "10.0.0.0/29")}, steps: []step{
			{req: Request{Key: "a/1", IPs: ips("10.0.0.5")}, wantIPs: ips("10.0.0.5")},
			{req: Request{Key: "a/2", IPs: ips("10.0.0.5")}, wantErr: ErrInUse},
			{req: Request{Key: "a/3", IPs: ips("192.168.1.1")}, wantErr: ErrNotInPool},
			{req: Request{Key: "a/4", IPs: ips("10.0.0.1", "10.0.0.2")}, wantErr: ErrBadRequest},
			{req: Request{Key: "a/5"}, wantIPs: ips("10.0.0.0")},
		}},
		{name: "unknown pool", pools: []Pool{mustPool(t, "p", "10.0.0.0/29")}, steps: []step{
			{req: Request{Key: "a/1", Pool: "nope"}, wantErr: ErrUnknownPool},
		}},
		{name: "dual stack from one pool", pools: []Pool{dual}, steps: []step{
			{req: Request{Key: "a/1", Pool: "dual", Families: []Family{IPv6, IPv4}}, wantIPs: ips("fd00:6::", "10.6.0.0")},
			{req: Request{Key: "a/2", IPs: ips("10.6.0.2", "fd00:6::3")}, wantIPs: ips("10.6.0.2", "fd00:6::3")},
			{req: Request{Key: "a/3", Pool: "dual", Families: []Family{IPv4, IPv6}, IPs: ips("fd00:6::2")}, wantIPs: ips("10.6.0.1", "fd00:6::2")},
		}},
		{name: "sharing", pools: []Pool{mustPool(t, "p", "10.0.0.0/29")}, steps: []step{
			{req: Request{Key: "a/dns-tcp", SharingKey: "dns", TrafficPolicyCluster: true, Ports: []Port{{"TCP", 53}}}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/dns-udp", SharingKey: "dns", TrafficPolicyCluster: true, Ports: []Port{{"UDP", 53}}}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/dns-dup", SharingKey: "dns", TrafficPolicyCluster: true, Ports: []Port{{"UDP", 53}}}, wantIPs: ips("10.0.0.1")},
			{req: Request{Key: "a/other-key", SharingKey: "web", TrafficPolicyCluster: true, IPs: ips("10.0.0.0"), Ports: []Port{{"TCP", 80}}}, wantErr: ErrInUse},
			{req: Request{Key: "a/local", SharingKey: "dns", Selector: "app=dns", IPs: ips("10.0.0.0"), Ports: []Port{{"TCP", 853}}}, wantErr: ErrInUse},
			{req: Request{Key: "a/no-key", IPs: ips("10.0.0.0")}, wantErr: ErrInUse},
			{release: "a/dns-tcp"},
			{req: Request{Key: "a/next"}, wantIPs: ips("10.0.0.2")}, // 10.0.0.0 still held by dns-udp
		}},
		{name: "local sharing needs equal selectors", pools: []Pool{mustPool(t, "p", "10.0.0.0/29")}, steps: []step{
			{req: Request{Key: "a/1", SharingKey: "k", Selector: "app=x", Ports: []Port{{"TCP", 1}}}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/2", SharingKey: "k", Selector: "app=x", Ports: []Port{{"TCP", 2}}}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/3", SharingKey: "k", Selector: "app=y", Ports: []Port{{"TCP", 3}}}, wantIPs: ips("10.0.0.1")},
		}},
		{name: "changed request moves, failed change keeps the old", pools: []Pool{mustPool(t, "p", "10.0.0.0/30"), mustPool(t, "q", "10.1.0.0/32")}, steps: []step{
			{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/1", IPs: ips("10.0.0.2")}, wantIPs: ips("10.0.0.2")},
			{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.0")},
			{req: Request{Key: "a/1", Pool: "q"}, wantIPs: ips("10.1.0.0")},
			{req: Request{Key: "a/3", Pool: "q"}, wantErr: ErrPoolExhausted},
			{req: Request{Key: "a/2", Pool: "q"}, wantErr: ErrPoolExhausted},
			{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.0")}, // still its own
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, mustNew(t, tt.pools...), tt.steps)
		})
	}
}

func TestSetPoolsKeepsAllocations(t *testing.T) {
	a := mustNew(t, mustPool(t, "old", "10.0.0.0/30"))
	runSteps(t, a, []step{{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")}})
	if err := a.SetPools([]Pool{mustPool(t, "new", "10.0.0.0/29")}); err != nil {
		t.Fatal(err)
	}
	got, _ := a.Lookup("a/1")
	if got.Pool != "new" || got.IPs[0] != ip("10.0.0.0") {
		t.Errorf("after SetPools a/1 = %+v, want 10.0.0.0 in pool new", got)
	}
	runSteps(t, a, []step{{req: Request{Key: "a/2"}, wantIPs: ips("10.0.0.1")}})
	// A pool removed under live allocations keeps them (a config mistake must
	// not move an IP) and the freed addresses are not handed out.
	if err := a.SetPools([]Pool{mustPool(t, "other", "10.1.0.0/30")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup("a/1"); !ok {
		t.Fatal("allocation lost by SetPools")
	}
	if err := a.SetPools([]Pool{mustPool(t, "dup", "10.1.0.0/30"), mustPool(t, "dup", "10.2.0.0/30")}); err == nil {
		t.Fatal("SetPools accepted duplicate names")
	}
}

func TestRestoreRoundTrip(t *testing.T) {
	pools := []Pool{mustPool(t, "p", "10.0.0.0/28", "fd00::/124")}
	a := mustNew(t, pools...)
	runSteps(t, a, []step{
		{req: Request{Key: "a/1"}, wantIPs: ips("10.0.0.0")},
		{req: Request{Key: "a/2", Families: []Family{IPv4, IPv6}}, wantIPs: ips("10.0.0.1", "fd00::")},
		{req: Request{Key: "a/3", SharingKey: "s", TrafficPolicyCluster: true, Ports: []Port{{"TCP", 1}}}, wantIPs: ips("10.0.0.2")},
		{req: Request{Key: "a/4", SharingKey: "s", TrafficPolicyCluster: true, Ports: []Port{{"TCP", 2}}}, wantIPs: ips("10.0.0.2")},
	})
	b := mustNew(t, pools...)
	if err := b.Restore(a.Allocations()); err != nil {
		t.Fatal(err)
	}
	addrEq := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	if diff := cmp.Diff(a.Allocations(), b.Allocations(), addrEq); diff != "" {
		t.Errorf("allocations (-orig +restored):\n%s", diff)
	}
	if diff := cmp.Diff(a.Stats(), b.Stats()); diff != "" {
		t.Errorf("stats (-orig +restored):\n%s", diff)
	}
	// Both continue identically.
	x, _ := a.Allocate(Request{Key: "a/5"})
	y, _ := b.Allocate(Request{Key: "a/5"})
	if diff := cmp.Diff(x, y, addrEq); diff != "" {
		t.Errorf("next allocation differs (-orig +restored):\n%s", diff)
	}
	if err := b.Restore(nil); err == nil {
		t.Error("Restore into a non-empty allocator succeeded")
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "gold"}
	tests := []struct {
		name string
		sel  Selector
		want bool
	}{
		{"empty matches all", Selector{}, true},
		{"labels", Selector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"labels mismatch", Selector{MatchLabels: map[string]string{"app": "db"}}, false},
		{"in", Selector{MatchExpressions: []SelectorRequirement{{"tier", "In", []string{"gold", "silver"}}}}, true},
		{"notin", Selector{MatchExpressions: []SelectorRequirement{{"tier", "NotIn", []string{"gold"}}}}, false},
		{"exists", Selector{MatchExpressions: []SelectorRequirement{{"app", "Exists", nil}}}, true},
		{"doesnotexist", Selector{MatchExpressions: []SelectorRequirement{{"zone", "DoesNotExist", nil}}}, true},
		{"unknown operator", Selector{MatchExpressions: []SelectorRequirement{{"app", "Gt", []string{"1"}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.Matches(labels); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}
