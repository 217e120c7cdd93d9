package raft

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
