package kube

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// TestPoolAnnotations: edged writes the pool under MetalLB's current key
// (metallb.io/) and keeps the deprecated metallb.universe.tf/ one equal, so
// tools reading either agree. A Service that carries only the old key (as
// MetalLB before 0.13 and earlier edged wrote it) or a stale value under
// either key is brought in line; releasing removes both; every other
// annotation is untouched.
func TestPoolAnnotations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	srv := kubetest.Start(t)
	st, err := newMemStore(mustPools(t, "p=10.4.18.0/28"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, admin: srv.Client(t), store: st, ns: srv.Namespace(t)}
	startController(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{})

	both := func(name, want string) {
		t.Helper()
		wait.For(t, waitTimeout, name+" pool annotations = "+want, func() (bool, string) {
			a := e.get(t, name).Annotations
			return a[AnnAllocatedFromPool] == want && a[AnnAllocatedFromPoolDeprecated] == want, fmt.Sprint(a)
		})
	}
	for name, anns := range map[string]map[string]string{
		"fresh":      {},
		"old-only":   {AnnAllocatedFromPoolDeprecated: "p"},
		"stale-new":  {AnnAllocatedFromPool: "gone", AnnAllocatedFromPoolDeprecated: "p"},
		"stale-both": {AnnAllocatedFromPool: "gone", AnnAllocatedFromPoolDeprecated: "gone", "team": "a"},
	} {
		s := lbService(e.ns, name, 80)
		for k, v := range anns {
			s.Annotations[k] = v
		}
		e.create(t, s)
		both(name, "p")
	}
	if got := e.get(t, "stale-both").Annotations["team"]; got != "a" {
		t.Errorf("team annotation = %q, want untouched", got)
	}

	e.update(t, "old-only", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP; s.Spec.Ports[0].NodePort = 0 })
	wait.For(t, waitTimeout, "old-only: both pool annotations removed", func() (bool, string) {
		a := e.get(t, "old-only").Annotations
		_, n := a[AnnAllocatedFromPool]
		_, o := a[AnnAllocatedFromPoolDeprecated]
		return !n && !o, fmt.Sprint(a)
	})
}
