package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// TestServiceController runs the controller against a real kube-apiserver
// with the edged token bound to configs/rbac.yaml only.
func TestServiceController(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	e := startEnv(t, Options{}, "default="+referencePool, "other=192.168.50.0/30")
	ctx := context.Background()

	t.Run("seed services", func(t *testing.T) {
		web := lbService(e.ns, "web-service", 80)
		web.Spec.Ports[0].TargetPort.IntVal = 8080
		web.Annotations["external-dns.alpha.kubernetes.io/hostname"] = "web.goldentooth.net"
		e.create(t, web)
		e.create(t, lbService(e.ns, "database", 5432))
		for _, n := range []string{"web-service", "database"} {
			ip := e.waitIP(t, n)
			if !strings.HasPrefix(ip, "10.4.1") {
				t.Errorf("%s got %s, want from %s", n, ip, referencePool)
			}
			e.waitEvent(t, n, ReasonAllocated)
			s := e.get(t, n)
			if m := s.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
				t.Errorf("%s ipMode %v, want VIP", n, m)
			}
			wait.For(t, waitTimeout, n+" pool annotation", func() (bool, string) {
				v := e.get(t, n).Annotations[AnnAllocatedFromPool]
				return v == "default", v
			})
		}
		if got := e.get(t, "web-service").Annotations["external-dns.alpha.kubernetes.io/hostname"]; got != "web.goldentooth.net" {
			t.Errorf("hostname annotation = %q, want untouched", got)
		}
	})

	t.Run("same ip twice", func(t *testing.T) {
		a := lbService(e.ns, "same-a", 80)
		a.Spec.LoadBalancerIP = "10.4.12.7"
		e.create(t, a)
		if ip := e.waitIP(t, "same-a"); ip != "10.4.12.7" {
			t.Fatalf("same-a got %s", ip)
		}
		b := lbService(e.ns, "same-b", 81)
		b.Annotations["metallb.universe.tf/loadBalancerIPs"] = "10.4.12.7"
		e.create(t, b)
		e.waitEvent(t, "same-b", ReasonFailed)
		if n := len(e.get(t, "same-b").Status.LoadBalancer.Ingress); n != 0 {
			t.Errorf("same-b has %d ingress, want 0", n)
		}
	})

	t.Run("outside every pool", func(t *testing.T) {
		s := lbService(e.ns, "outside", 80)
		s.Annotations["metallb.io/loadBalancerIPs"] = "172.16.0.1"
		e.create(t, s)
		e.waitEvent(t, "outside", ReasonFailed)
	})

	t.Run("conflicting spellings", func(t *testing.T) {
		s := lbService(e.ns, "conflict", 80)
		s.Annotations["metallb.universe.tf/address-pool"] = "default"
		s.Annotations["metallb.io/address-pool"] = "other"
		e.create(t, s)
		e.waitEvent(t, "conflict", ReasonBadConfig)
		if _, ok := e.store.Lookup(e.ns + "/conflict"); ok {
			t.Error("conflicting annotations allocated an address")
		}
	})

	t.Run("zone in requested ip", func(t *testing.T) {
		// The apiserver checks spec.loadBalancerIP but not annotations.
		s := lbService(e.ns, "zoned", 80)
		s.Annotations["metallb.universe.tf/loadBalancerIPs"] = "fd00:4::5%x]:1\nglobal\n  program evil"
		e.create(t, s)
		msg := e.waitEvent(t, "zoned", ReasonBadConfig)
		if !strings.Contains(msg, "metallb.universe.tf/loadBalancerIPs: ") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("InvalidConfiguration message %q: want the annotation named and no raw line break", msg)
		}
		if _, ok := e.store.Lookup(e.ns + "/zoned"); ok {
			t.Error("a zoned address was allocated")
		}
	})

	t.Run("pool annotation and exhaustion", func(t *testing.T) {
		// "other" is a /30: 4 addresses.
		for _, n := range []string{"o1", "o2", "o3", "o4"} {
			s := lbService(e.ns, n, 80)
			s.Annotations["metallb.io/address-pool"] = "other"
			e.create(t, s)
			if ip := e.waitIP(t, n); !strings.HasPrefix(ip, "192.168.50.") {
				t.Fatalf("%s got %s", n, ip)
			}
		}
		s := lbService(e.ns, "o5", 80)
		s.Annotations["metallb.io/address-pool"] = "other"
		e.create(t, s)
		msg := e.waitEvent(t, "o5", ReasonFailed)
		if !strings.Contains(msg, "no free address") {
			t.Errorf("AllocationFailed message %q does not name exhaustion", msg)
		}
		freed := e.waitIP(t, "o1")
		if err := e.admin.CoreV1().Services(e.ns).Delete(ctx, "o1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if ip := e.waitIP(t, "o5"); ip != freed {
			t.Errorf("o5 got %s, want the freed %s", ip, freed)
		}
	})

	t.Run("class not ours", func(t *testing.T) {
		s := lbService(e.ns, "foreign", 80)
		cls := "someone-else"
		s.Spec.LoadBalancerClass = &cls
		e.create(t, s)
		ours := lbService(e.ns, "ours-after", 80)
		e.create(t, ours)
		e.waitIP(t, "ours-after") // the queue has passed "foreign" too
		if n := len(e.get(t, "foreign").Status.LoadBalancer.Ingress); n != 0 {
			t.Errorf("foreign class got %d ingress", n)
		}
	})

	t.Run("type change releases", func(t *testing.T) {
		e.create(t, lbService(e.ns, "to-clusterip", 80))
		e.waitIP(t, "to-clusterip")
		e.update(t, "to-clusterip", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			for i := range s.Spec.Ports {
				s.Spec.Ports[i].NodePort = 0
			}
		})
		e.waitEvent(t, "to-clusterip", ReasonReleased)
		if _, ok := e.store.Lookup(e.ns + "/to-clusterip"); ok {
			t.Error("allocation kept after type change")
		}
	})

	t.Run("requested ip change reallocates", func(t *testing.T) {
		s := lbService(e.ns, "move-me", 80)
		s.Spec.LoadBalancerIP = "10.4.13.1"
		e.create(t, s)
		e.waitIP(t, "move-me")
		e.update(t, "move-me", func(s *corev1.Service) {
			s.Annotations["metallb.universe.tf/loadBalancerIPs"] = "10.4.13.2"
			s.Spec.LoadBalancerIP = ""
		})
		wait.For(t, waitTimeout, "move-me at 10.4.13.2", func() (bool, string) {
			in := e.get(t, "move-me").Status.LoadBalancer.Ingress
			return len(in) == 1 && in[0].IP == "10.4.13.2", ""
		})
	})
}

// TestAdoptsMetalLBIP: a Service whose status MetalLB already wrote keeps
// that address when edged starts: migration moves no IP.
func TestAdoptsMetalLBIP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	ctx := context.Background()
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	e.create(t, lbService(e.ns, "metallb-owned", 80))
	got := e.get(t, "metallb-owned")
	got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.4.14.200"}}
	if _, err := e.admin.CoreV1().Services(e.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := newMemStore(mustPools(t, "default="+referencePool))
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	startController(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{})
	e.waitEvent(t, "metallb-owned", ReasonAllocated)
	if ip := e.waitIP(t, "metallb-owned"); ip != "10.4.14.200" {
		t.Errorf("adopted service moved to %s, want 10.4.14.200", ip)
	}
	if al, ok := st.Lookup(e.ns + "/metallb-owned"); !ok || al.IPs[0].String() != "10.4.14.200" {
		t.Errorf("store holds %v %v, want 10.4.14.200", al, ok)
	}
}
