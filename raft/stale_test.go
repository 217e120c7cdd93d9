package raft

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestStaleRenewalKeepsGrant: a renewal the host sent before it received
// its latest grant (left on a timed-out connection and handled late: its
// ack is not the leader's latest response, its Held lacks the new IP) must
// not make the leader forget that grant; otherwise the leader would lease
// the same IP to another host while this one still announces it. Nor may
// it undo a drain the host asked for since.
func TestStaleRenewalKeepsGrant(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := range 6 {
		c.allocate(fmt.Sprintf("ns/svc-%d", i))
	}
	c.converged(20 * time.Second)
	lid, l := c.leader(10 * time.Second)
	var host string
	var ip netip.Addr
	for addr, owner := range owners(l) {
		if owner != lid {
			host, ip = owner, addr
			break
		}
	}
	if host == "" {
		t.Fatal("no IP owned by a follower")
	}
	ls := l.ldr.Load()
	stale := renewRequest{From: host, Term: ls.term, Ack: 0, Held: nil, Draining: true}
	if resp := l.grant(stale); !resp.OK {
		t.Fatalf("stale renewal refused: %s", resp.Reason)
	}
	ls.mu.Lock()
	held := ls.otherHolds(ip, "someone-else", time.Now(), l.cfg.ClockDriftMargin)
	drain := ls.drainReq[host]
	ls.mu.Unlock()
	if !held {
		t.Errorf("after a stale renewal from %s without %s, the leader no longer counts %s as held by it", host, ip, ip)
	}
	if drain {
		t.Errorf("a stale renewal set %s draining", host)
	}
	c.checkNoOverlap()
}
