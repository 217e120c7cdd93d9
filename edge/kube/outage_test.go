package kube

import (
	"context"
	"flag"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// outage is how long TestAPIServerOutage keeps the apiserver down. The issue
// asks for a minute; make test uses less, the full minute is
// `go test ./edge/kube -run TestAPIServerOutage -args -outage=1m`.
var outage = flag.Duration("outage", 12*time.Second, "how long TestAPIServerOutage keeps the apiserver down")

// catchUp bounds how long the controller may take to act on changes made
// after the apiserver returns. With PatientDial the informers' pending
// request goes through within redialEvery (measured: 0.24 s); without it
// client-go's jittered backoff (capped at 30 s, up to 60 s with the jitter)
// took 24.5 s after a 12 s outage and 49 s after a minute.
const catchUp = 20 * time.Second

// TestAPIServerOutage stops the apiserver under a running controller (real
// single-node raft): nothing crashes, the allocations and the informer cache
// stay intact while it is away, and once it returns the controller catches
// up with a new Service and an edited one.
func TestAPIServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver and raft over loopback")
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	st := mustRaftStore(t, "default="+referencePool)
	rc := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	PatientDial(rc) // as edged run does
	c, run := newController(clientFor(rc), st, Options{}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})

	names := []string{"a", "b", "c"}
	want := map[string]string{}
	for _, n := range names {
		e.create(t, lbService(e.ns, n, 80))
	}
	for _, n := range names {
		want[n] = e.waitIP(t, n)
	}
	// The informer cache has seen the status writes before the outage.
	wait.For(t, waitTimeout, "cache holds the statuses", func() (bool, string) { return cacheMatches(c, e.ns, want), "" })
	before := st.State().Allocations

	srv.Stop(t)
	start := time.Now()
	for checks := 0; time.Since(start) < *outage; checks++ {
		select {
		case err := <-done:
			t.Fatalf("controller returned during the outage after %v: %v", time.Since(start), err)
		default:
		}
		if !st.IsLeader() {
			t.Fatalf("raft lost leadership during the outage")
		}
		if got := st.State().Allocations; !reflect.DeepEqual(got, before) {
			t.Fatalf("allocations changed during the outage: %v -> %v", before, got)
		}
		if !cacheMatches(c, e.ns, want) {
			t.Fatalf("informer cache lost Services or statuses %v after %v", want, time.Since(start))
		}
		time.Sleep(250 * time.Millisecond) // poll interval over a fixed outage
	}
	t.Logf("apiserver down for %v: allocations and cache intact", time.Since(start).Round(time.Millisecond))
	srv.Restart(t)
	back := time.Now()

	e.create(t, lbService(e.ns, "after", 80))
	e.update(t, "b", func(s *corev1.Service) { s.Annotations["metallb.universe.tf/loadBalancerIPs"] = "10.4.13.50" })
	if err := wait.UntilEvery(catchUp, 100*time.Millisecond, "catch-up after the apiserver returned", func() (bool, string) {
		after := e.get(t, "after").Status.LoadBalancer.Ingress
		b := e.get(t, "b").Status.LoadBalancer.Ingress
		return len(after) == 1 && len(b) == 1 && b[0].IP == "10.4.13.50", fmt.Sprintf("after=%v b=%v", after, b)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("caught up %v after the apiserver returned", time.Since(back).Round(time.Millisecond))
	for _, n := range []string{"a", "c"} {
		if got := e.waitIP(t, n); got != want[n] {
			t.Errorf("%s moved from %s to %s across the outage", n, want[n], got)
		}
	}
}

// cacheMatches reports whether the controller's Service cache shows want
// (name -> ingress IP) in ns.
func cacheMatches(c *Controller, ns string, want map[string]string) bool {
	for n, ip := range want {
		s, err := c.cache.Services.Services(ns).Get(n)
		if err != nil || len(s.Status.LoadBalancer.Ingress) != 1 || s.Status.LoadBalancer.Ingress[0].IP != ip {
			return false
		}
	}
	return true
}

// TestPatientDial: a refused dial is retried until the listener appears;
// the context ends the wait.
func TestPatientDial(t *testing.T) {
	addr := freeport.Addr(t) // nothing listens here yet
	d := &net.Dialer{}
	go func() {
		time.Sleep(4 * redialEvery) // the listener appears later: the point of the test
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		l.Close()
	}()
	c, err := patientDial(context.Background(), d.DialContext, "tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatalf("patient dial: %v", err)
	}
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*redialEvery)
	defer cancel()
	start := time.Now()
	// The context may end between dials (connection refused) or inside one
	// (i/o timeout): either way the wait ends with an error.
	if _, err := patientDial(ctx, d.DialContext, "tcp", freeport.Addr(t), time.Minute); err == nil {
		t.Error("cancelled dial succeeded")
	}
	if time.Since(start) > 10*redialEvery {
		t.Errorf("cancelled dial took %v", time.Since(start))
	}
}
