package raft

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/test/wait"
)

func TestClusterKillsAndRestarts(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-hosts", n), func(t *testing.T) {
			c := newTestCluster(t, n, nil)
			c.setPools(refPool(), nil)
			for i := 0; i < 20; i++ {
				c.allocate(fmt.Sprintf("ns/svc-%02d", i))
			}
			c.converged(10 * time.Second)
			_, ls := c.leader(5 * time.Second)
			wantAllocs := ls.State().Allocations
			wantOwners := owners(ls)

			// Leader killed: a new leader takes over, nothing lost.
			lid, _ := c.leader(5 * time.Second)
			c.crash(lid)
			c.allocate("ns/after-leader-kill")
			c.converged(10 * time.Second)
			c.start(lid)
			c.converged(10 * time.Second)

			// A follower killed.
			nl, _ := c.leader(5 * time.Second)
			for _, id := range c.up() {
				if id != nl {
					c.crash(id)
					break
				}
			}
			c.allocate("ns/after-follower-kill")
			c.converged(10 * time.Second)

			// Every host restarted (the crashed ones first, then the rest).
			for _, id := range c.ids {
				if c.store(id) == nil {
					c.start(id)
				}
			}
			for _, id := range c.ids {
				c.crash(id)
			}
			for _, id := range c.ids {
				c.start(id)
			}
			c.converged(15 * time.Second)
			_, ls = c.leader(5 * time.Second)
			got := ls.State().Allocations
			if len(got) != len(wantAllocs)+2 {
				t.Fatalf("got %d allocations, want %d", len(got), len(wantAllocs)+2)
			}
			gotMap := map[string]string{}
			for _, a := range got {
				gotMap[a.Key] = fmt.Sprint(a.IPs)
			}
			for _, a := range wantAllocs {
				if gotMap[a.Key] != fmt.Sprint(a.IPs) {
					t.Errorf("allocation %s = %s, want %v", a.Key, gotMap[a.Key], a.IPs)
				}
			}
			gotOwners := owners(ls)
			for ip, o := range wantOwners {
				if gotOwners[ip] != o {
					t.Errorf("owner of %s = %q, want %q (all hosts healthy again)", ip, gotOwners[ip], o)
				}
			}
			if d := cmp.Diff(len(wantOwners)+2, len(gotOwners)); d != "" {
				t.Errorf("assigned IPs (-want +got):\n%s", d)
			}
			c.checkNoOverlap()
		})
	}
}

// TestLeaderCrashKeepsOtherLeases crashes a leader that owns nothing (an
// operator drained it) several times, each while the hosts renew, and
// checks from the recorded intervals that the other hosts' leases never
// lapsed: they renew with the voters, not with the leader, and two of
// three voters answer.
func TestLeaderCrashKeepsOtherLeases(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := 0; i < 20; i++ {
		c.allocate(fmt.Sprintf("ns/l-%02d", i))
	}
	for trial := 0; trial < 3; trial++ {
		lid, ls := c.leader(10 * time.Second)
		if err := ls.SetAdminDrain(context.Background(), lid, true); err != nil {
			t.Fatalf("drain leader %s: %v", lid, err)
		}
		c.drainedAway(lid, 10*time.Second)
		all := owners(ls)
		t0 := time.Now()
		c.crash(lid)
		nid, nl := c.leader(10 * time.Second)
		// Past the old leases' end and a new leader's first decisions.
		wait.ForBool(t, 5*time.Second, "a lease past the crash", func() bool { return time.Since(t0) > time.Second })
		end := time.Now()
		for ip, o := range all {
			if d := c.rec.darkTime(ip, t0, end); d > 0 {
				t.Errorf("trial %d: %s of %s dark for %v after leader %s crashed (new leader %s)", trial, ip, o, d, lid, nid)
			}
		}
		c.start(lid)
		if err := nl.SetAdminDrain(context.Background(), lid, false); err != nil {
			t.Fatalf("undrain %s: %v", lid, err)
		}
		c.converged(10 * time.Second)
	}
	c.checkNoOverlap()
}
