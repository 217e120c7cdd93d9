package raft

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestStaleRenewalKeepsGrant: a renewal whose ack is not the leader's
// latest response to the host (and whose Held lacks the IP granted since)
// must not make the leader forget that grant; otherwise the leader would
// lease the same IP to another host while this one still announces it. Nor
// may it undo a drain the host asked for since.
//
// A request sent before the latest grant and handled late is now refused by
// its sequence number (TestStaleSequenceRefused). This one is newer by
// number, as on a new connection (ack 0) after a lost answer, which the ack
// check still treats as not current: the check that guards senders without
// numbers.
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
	hs := c.store(host)
	hs.lc.mu.Lock() // the host sends nothing meanwhile, as in renewOnce
	stale := renewRequest{From: host, Term: ls.term, Ack: 0, Held: nil, Draining: true,
		Incarnation: hs.incarnation, ReqSeq: hs.reqSeq.Add(1)}
	resp := l.grant(stale)
	hs.lc.mu.Unlock()
	if !resp.OK {
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
