package kube

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// TestDualStackService: a RequireDualStack Service gets one address of
// each family from a pool that has both (MetalLB's rule), both in the
// status in the Service's family order; a single-stack IPv6 Service gets an
// IPv6 address; a dual-stack Service whose only pool is IPv4 fails with an
// Event instead of getting half.
func TestDualStackService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	v4, _ := lbpool.ParseRange("10.4.16.0/28")
	v6, _ := lbpool.ParseRange("fd00:4::16:0/124")
	only4, _ := lbpool.ParseRange("10.4.17.0/28")
	st, err := newMemStore([]lbpool.Pool{
		{Name: "dual", Ranges: []lbpool.Range{v4, v6}, AutoAssign: true},
		{Name: "v4", Ranges: []lbpool.Range{only4}, AutoAssign: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), store: st, ns: srv.Namespace(t)}
	startController(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{})

	dual := func(name string, families ...corev1.IPFamily) *corev1.Service {
		s := lbService(e.ns, name, 80)
		policy := corev1.IPFamilyPolicyRequireDualStack
		if len(families) == 1 {
			policy = corev1.IPFamilyPolicySingleStack
		}
		s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &policy, families
		return s
	}
	ingress := func(name string) []netip.Addr {
		var out []netip.Addr
		wait.For(t, waitTimeout, name+" ingress", func() (bool, string) {
			out = statusIPs(e.get(t, name))
			return len(out) > 0, "no ingress"
		})
		return out
	}

	e.create(t, dual("both", corev1.IPv6Protocol, corev1.IPv4Protocol))
	wait.For(t, waitTimeout, "both: two ingress IPs", func() (bool, string) {
		return len(statusIPs(e.get(t, "both"))) == 2, "fewer than two"
	})
	ips := ingress("both")
	if !ips[0].Is6() || !ips[1].Is4() || !v6.Contains(ips[0]) || !v4.Contains(ips[1]) {
		t.Errorf("both: ingress %v, want an IPv6 from %v then an IPv4 from %v", ips, v6, v4)
	}
	e.waitEvent(t, "both", ReasonAllocated)

	e.create(t, dual("six", corev1.IPv6Protocol))
	if ips := ingress("six"); len(ips) != 1 || !v6.Contains(ips[0]) {
		t.Errorf("six: ingress %v, want one address from %v", ips, v6)
	}

	half := dual("half", corev1.IPv4Protocol, corev1.IPv6Protocol)
	half.Annotations["metallb.universe.tf/address-pool"] = "v4"
	e.create(t, half)
	if msg := e.waitEvent(t, "half", ReasonFailed); !strings.Contains(msg, `pool "v4" has no IPv6 range`) {
		t.Errorf("half: AllocationFailed %q does not say the pool has no IPv6 range", msg)
	}
	if ips := statusIPs(e.get(t, "half")); len(ips) != 0 {
		t.Errorf("half: ingress %v from an IPv4-only pool, want none", ips)
	}
}

// TestPreferDualStackService: a PreferDualStack Service (on this dual-stack
// apiserver it gets both cluster IP families) whose pool has only IPv4 gets
// its IPv4 address, status and pool annotation, as with MetalLB >= 0.14.9,
// instead of AllocationFailed; when the pool gains an IPv6 range it gains an
// IPv6 address and keeps its IPv4 one. Resyncs in between write nothing.
func TestPreferDualStackService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	only4, _ := lbpool.ParseRange("10.4.19.0/28")
	v6, _ := lbpool.ParseRange("fd00:4::19:0/124")
	st, err := newMemStore([]lbpool.Pool{{Name: "v4", Ranges: []lbpool.Range{only4}, AutoAssign: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), store: st, ns: srv.Namespace(t)}
	startControllerResync(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{}, resyncPeriod)

	s := lbService(e.ns, "prefer", 80)
	policy := corev1.IPFamilyPolicyPreferDualStack
	s.Spec.IPFamilyPolicy = &policy
	e.create(t, s)
	if fams := e.get(t, "prefer").Spec.IPFamilies; len(fams) != 2 {
		t.Fatalf("the test apiserver gave a PreferDualStack Service families %v, want two (is it dual-stack?)", fams)
	}
	var first []netip.Addr
	wait.For(t, waitTimeout, "prefer: IPv4 ingress and pool annotation", func() (bool, string) {
		svc := e.get(t, "prefer")
		first = statusIPs(svc)
		return len(first) == 1 && svc.Annotations[AnnAllocatedFromPool] == "v4", fmt.Sprint(first, svc.Annotations)
	})
	if !only4.Contains(first[0]) {
		t.Errorf("prefer: ingress %v, want an address of %v", first, only4)
	}
	e.waitEvent(t, "prefer", ReasonAllocated)
	rv := e.get(t, "prefer").ResourceVersion
	epoch := st.FreeEpoch()
	time.Sleep(4 * resyncPeriod) // resyncs must change nothing: there is no condition to wait for
	if got := e.get(t, "prefer").ResourceVersion; got != rv || st.FreeEpoch() != epoch {
		t.Errorf("resyncs of a PreferDualStack Service on an IPv4-only pool wrote (resourceVersion %s -> %s, free epoch %d -> %d)",
			rv, got, epoch, st.FreeEpoch())
	}

	if err := st.setPools([]lbpool.Pool{{Name: "v4", Ranges: []lbpool.Range{only4, v6}, AutoAssign: true}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "prefer: IPv6 added once the pool has a range", func() (bool, string) {
		ips := statusIPs(e.get(t, "prefer"))
		return len(ips) == 2, fmt.Sprint(ips)
	})
	ips := statusIPs(e.get(t, "prefer"))
	if !slices.Contains(ips, first[0]) || !slices.ContainsFunc(ips, v6.Contains) {
		t.Errorf("prefer: ingress %v, want %v kept and an address of %v", ips, first[0], v6)
	}
}
