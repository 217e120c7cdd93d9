package raft

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// TestPartitionOwnerGoesQuietFirst isolates a host that owns IPs (a
// follower, then the leader) and checks over the recorded lease intervals
// that it stopped holding every IP before any other host's lease for it
// began, that the IPs moved, and that healing brings it back.
func TestPartitionOwnerGoesQuietFirst(t *testing.T) {
	for _, tc := range []struct {
		isolateLeader, blackhole bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		isolateLeader := tc.isolateLeader
		name := map[bool]string{false: "follower-owner", true: "leader-owner"}[isolateLeader] +
			map[bool]string{false: "-reset", true: "-blackhole"}[tc.blackhole]
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t, 3, nil)
			c.proxy.mu.Lock()
			c.proxy.blackhole = tc.blackhole
			c.proxy.mu.Unlock()
			c.setPools(refPool(), nil)
			for i := 0; i < 30; i++ {
				c.allocate(fmt.Sprintf("ns/p-%02d", i))
			}
			c.converged(10 * time.Second)
			lid, ls := c.leader(5 * time.Second)
			victim := lid
			if !isolateLeader {
				for _, id := range c.ids {
					if id != lid && len(ls.ownedBy(id)) > 0 {
						victim = id
						break
					}
				}
			}
			ips := ls.ownedBy(victim)
			if len(ips) == 0 {
				t.Fatalf("%s owns no IPs", victim)
			}
			start := time.Now()
			c.proxy.isolate(victim, c.ids)
			moved := c.waitMoved(victim, ips, 10*time.Second)
			t.Logf("isolated %s (leader=%v) with %d IPs: all leased elsewhere after %s", victim, isolateLeader, len(ips), moved.Sub(start))
			// The isolated host must hold nothing by now.
			if got := c.store(victim).Leases(time.Now()); len(got) > 0 {
				t.Errorf("isolated %s still holds %d leases", victim, len(got))
			}
			for _, ip := range ips {
				first := c.rec.firstStartAfter(ip, victim, start)
				if h := c.rec.holders(ip, first); len(h) != 1 {
					t.Errorf("%s at takeover %s held by %v, want exactly the new owner", ip, first.Format("15:04:05.000"), h)
				}
			}
			c.checkNoOverlap()
			c.proxy.heal()
			c.converged(10 * time.Second)
			c.checkNoOverlap()
		})
	}
}

// waitMoved waits until every ip is owned by, and leased to, a host other
// than from, and returns when that was first seen.
func (c *testCluster) waitMoved(from string, ips []netip.Addr, timeout time.Duration) time.Time {
	c.t.Helper()
	var at time.Time
	wait.ForBool(c.t, timeout, "IPs of "+from+" to move", func() bool {
		for _, id := range c.up() {
			s := c.store(id)
			if id == from || s == nil || !s.IsLeader() || s.ldr.Load() == nil {
				continue
			}
			own := owners(s)
			now := time.Now()
			for _, ip := range ips {
				o := own[ip]
				os := c.store(o)
				if o == "" || o == from || os == nil || !holds(os.Leases(now), ip) {
					return false
				}
			}
			at = now
			return true
		}
		return false
	})
	return at
}
