package edgelab

import (
	"maps"
	"testing"
	"time"
)

// editedRange replaces PoolRange in the pool edit: it holds none of the
// addresses the first Services get (they come from the start of the range).
const editedRange = "10.77.0.225 - 10.77.0.229"

// TestPoolEditKeepsLiveIPs shrinks the pool under live Services on every
// host and reloads with SIGHUP: lbpool keeps the allocations that left the
// pool, and their VIPs must stay answered (issue 14: the announcer used to
// drop IPs outside the local pools, leaving them on lo unanswered). Then
// the holder of one such IP shuts down: the host that takes it over never
// announced it and finds it in no pool, and must still announce it.
func TestPoolEditKeepsLiveIPs(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver)")
	}
	l := New(t, Options{})
	vips := mustServices(t, l)
	before := ingressIPs(t, l)
	ip := vips[0]
	p := l.StartProbe(ip, ProbeInterval)
	defer p.Stop()
	if err := p.WaitOK(20, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	setPoolRange(t, l, editedRange, 5)
	// Watch the client for a while after the reload: every request answered.
	watched := time.Now().Add(2 * time.Second)
	time.Sleep(time.Until(watched)) // observation window, not synchronisation
	if g, ok := GapAfter(p.Results(), edited, watched); !ok || g.Failed > 0 {
		t.Errorf("after the pool edit: %d failed requests to %s (answered at all: %t)", g.Failed, ip, ok)
	}
	if after := ingressIPs(t, l); !maps.Equal(before, after) {
		t.Errorf("Service IPs changed by the pool edit:\nbefore %v\nafter  %v", before, after)
	}
	// A client whose neighbour cache entry expired asks again: the holder
	// must still answer for the IP (the old announcer had dropped it).
	holder := l.Holder(ip)
	if holder == nil {
		t.Fatalf("%s has no holder\n%s", ip, l.LogTails(2000))
	}
	answers := func(what string, want *Edge) {
		t.Helper()
		got, out, err := l.Arping(ip, 3)
		if err != nil && len(got) == 0 {
			t.Errorf("%s: nobody answers ARP for %s: %v\n%s", what, ip, err, out)
			return
		}
		if len(got) != 1 || got[want.MAC.String()] == 0 {
			t.Errorf("%s: ARP answers for %s by MAC %v, want only %s (%s)", what, ip, got, want.ID, want.MAC)
		}
	}
	answers("after the pool edit", holder)

	// The holder leaves (its exit waits out the hand-over linger, so the
	// address is off its lo when TermEdged returns): the next host has
	// never announced ip, and ip is in no pool it knows.
	if err := l.TermEdged(holder, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOK(20, 30*time.Second); err != nil {
		t.Fatalf("%s after its holder %s left: %v\n%s", ip, holder.ID, err, l.LogTails(3000))
	}
	next := l.Holder(ip)
	if next == nil || next == holder {
		t.Fatalf("%s held by %v after %s left", ip, next, holder.ID)
	}
	answers("after the holder left", next)
	t.Logf("%s, outside every pool, moved from %s to %s and is answered", ip, holder.ID, next.ID)
}
