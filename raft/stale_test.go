package raft

import (
	"net/netip"
	"testing"
	"time"
)

// TestWithdrawnPromiseStaysRetired: when a voter stops promising an IP the
// host still counts from it (the IP moved away), the old promise keeps
// blocking every holder until it ends plus the margin: the answer that
// withdraws it may be lost, and the host then holds the IP until the old
// end. A later request of the same process that no longer counts it (not
// in Held) frees it at once.
func TestWithdrawnPromiseStaysRetired(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.setPools(refPool(), nil)
	a := c.allocate("ns/svc")
	c.converged(10 * time.Second)
	s := c.store("h1")
	ip := a.IPs[0]
	m := s.cfg.ClockDriftMargin
	vs := s.voter
	vs.mu.Lock()
	defer vs.mu.Unlock()
	now := time.Now()
	exp := now.Add(s.cfg.LeaseDuration)
	vs.hosts["hx"] = &hostRecord{ips: []netip.Addr{ip}, exp: exp}
	if !vs.otherHolds(ip, "h1", now, m) {
		t.Fatalf("a running promise of %s to hx does not block h1", ip)
	}
	vs.retire("hx", 7, vs.hosts["hx"].ips, exp, now)
	delete(vs.hosts, "hx")
	if !vs.otherHolds(ip, "h1", now, m) || !vs.otherHolds(ip, "hx", now, m) {
		t.Errorf("a retired promise of %s does not block every holder", ip)
	}
	if vs.otherHolds(ip, "h1", exp.Add(m), m) {
		t.Errorf("a retired promise of %s still blocks after its end plus the margin", ip)
	}
	vs.pruneRetired(exp.Add(m), m)
	if len(vs.retired) != 0 {
		t.Errorf("retired promises left after they ended: %v", vs.retired)
	}

	// A later request of the same process that no longer counts the IP
	// frees it; another process's request does not.
	vs.retire("hx", 7, []netip.Addr{ip}, exp, now)
	vs.releaseRetired("hx", 8, nil)
	if !vs.otherHolds(ip, "h1", now, m) {
		t.Errorf("a request of another process of hx released its retired promise of %s", ip)
	}
	vs.releaseRetired("hx", 7, []netip.Addr{ip})
	if !vs.otherHolds(ip, "h1", now, m) {
		t.Errorf("a request still counting %s released its retired promise", ip)
	}
	vs.releaseRetired("hx", 7, nil)
	if vs.otherHolds(ip, "h1", now, m) {
		t.Errorf("a request of hx no longer counting %s did not release it", ip)
	}
}
