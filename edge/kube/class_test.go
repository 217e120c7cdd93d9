package kube

import (
	"fmt"
	"testing"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// TestLoadBalancerClass checks MetalLB's class rule against a real
// kube-apiserver: a controller configured with a class serves only that
// class, and one restarted with a class releases the class-less Services
// it served before (status and pool annotation cleared, IPReleased).
func TestLoadBalancerClass(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	srv := kubetest.Start(t)
	cfg := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	st, err := newMemStore(mustPools(t, "default="+referencePool))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, admin: srv.Client(t), store: st, ns: srv.Namespace(t)}
	stop := startController(t, cfg, st, Options{})
	e.create(t, lbService(e.ns, "plain", 80))
	e.waitIP(t, "plain")
	stop()

	class := "edged"
	startController(t, cfg, st, Options{Class: class})
	e.waitEvent(t, "plain", ReasonReleased)
	wait.For(t, waitTimeout, "plain status and annotation cleared", func() (bool, string) {
		s := e.get(t, "plain")
		_, ann := s.Annotations[AnnAllocatedFromPool]
		_, old := s.Annotations[AnnAllocatedFromPoolDeprecated]
		ann = ann || old
		return len(s.Status.LoadBalancer.Ingress) == 0 && !ann, fmt.Sprint(s.Status.LoadBalancer.Ingress, s.Annotations)
	})
	if al, ok := st.Lookup(e.ns + "/plain"); ok {
		t.Errorf("class-less Service still holds %v", al.IPs)
	}

	e.create(t, lbService(e.ns, "plain-after", 80))
	ours := lbService(e.ns, "ours", 80)
	ours.Spec.LoadBalancerClass = &class
	e.create(t, ours)
	e.waitIP(t, "ours") // the queue has passed "plain-after" too
	if n := len(e.get(t, "plain-after").Status.LoadBalancer.Ingress); n != 0 {
		t.Errorf("class-less Service got %d ingress under class %q", n, class)
	}
	if _, ok := st.Lookup(e.ns + "/plain-after"); ok {
		t.Error("class-less Service allocated under a configured class")
	}
}
