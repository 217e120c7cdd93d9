package raft

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestElectionRank(t *testing.T) {
	same := map[string]uint64{}
	for _, tc := range []struct {
		name         string
		voters       []string
		self, leader string
		lastIndex    map[string]uint64
		wantRank     int
		wantOK       bool
	}{
		{"first survivor", []string{"h3", "h1", "h2"}, "h2", "h1", same, 0, true},
		{"second survivor", []string{"h3", "h1", "h2"}, "h3", "h1", same, 1, true},
		{"leader in the middle", []string{"h1", "h2", "h3"}, "h3", "h2", same, 1, true},
		{"leader unknown", []string{"h1", "h2", "h3"}, "h3", "", same, 2, true},
		{"longer log stands last", []string{"h1", "h2", "h3"}, "h2", "h3", map[string]uint64{"h1": 41, "h2": 40}, 0, true},
		{"longer log stands last, seen from it", []string{"h1", "h2", "h3"}, "h1", "h3", map[string]uint64{"h1": 41, "h2": 40}, 1, true},
		{"the leader itself", []string{"h1", "h2", "h3"}, "h1", "h1", same, -1, false},
		{"not a voter", []string{"h1", "h2"}, "h9", "h1", same, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			voters := append([]string(nil), tc.voters...)
			rank, ok := electionRank(voters, tc.self, tc.leader, func(id string) uint64 { return tc.lastIndex[id] })
			if rank != tc.wantRank || ok != tc.wantOK {
				t.Errorf("electionRank(%v, %s, %s) = %d, %v; want %d, %v", tc.voters, tc.self, tc.leader, rank, ok, tc.wantRank, tc.wantOK)
			}
			if diff := cmp.Diff(tc.voters, voters); diff != "" {
				t.Errorf("voters modified (-want +got):\n%s", diff)
			}
		})
	}
}

func TestElectionDue(t *testing.T) {
	last := time.Unix(1000, 0)
	for rank, want := range []time.Duration{150 * time.Millisecond, 187500 * time.Microsecond, 225 * time.Millisecond} {
		if got := electionDue(last, 150*time.Millisecond, rank).Sub(last); got != want {
			t.Errorf("rank %d: due %v after the last contact, want %v", rank, got, want)
		}
	}
}

// TestPromptElection: after the leader's crash a new leader is elected
// within HeartbeatTimeout plus one stagger of the last contact (plus slack
// for the vote and the new leader's barrier), not when hashicorp/raft's
// timers, randomised up to almost 3 HeartbeatTimeouts, let the slower
// survivor notice. A long HeartbeatTimeout (2 s) makes the two clearly
// apart: without pokeFollower's wake-up, both survivors must see their
// timer fire past the timeout, and the later of two uniform [2 s, 6 s)
// detections beats this bound in about 1 trial of 15, so two trials in a
// row fail a broken wake-up almost always.
func TestPromptElection(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a few 2 s heartbeat timeouts")
	}
	const ht = 2 * time.Second
	// LeaseDuration as long as the heartbeat timeout, as in the defaults
	// (200 ms > 150 ms): raft's LeaderLeaseTimeout is then at its largest.
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaseDuration = ht, ht, ht })
	bound := ht + electionStagger(ht) + 600*time.Millisecond
	for trial := 0; trial < 2; trial++ {
		lid, _ := c.leader(30 * time.Second)
		t0 := time.Now()
		c.crash(lid)
		nid, _ := c.leader(30 * time.Second)
		if took := time.Since(t0); took > bound {
			t.Errorf("trial %d: leader %s crashed, %s leads after %v; want within %v", trial, lid, nid, took.Round(time.Millisecond), bound)
		} else {
			t.Logf("trial %d: leader %s crashed, %s leads after %v (bound %v)", trial, lid, nid, took.Round(time.Millisecond), bound)
		}
		c.start(lid)
		c.converged(30 * time.Second)
	}
	// Every election above was a prompt one: the survivors counted it.
	stood := 0.0
	for _, id := range c.up() {
		stood += testutil.ToFloat64(c.store(id).met.leaderSilent)
	}
	if stood < 1 {
		t.Errorf("edged_raft_leader_silent_total summed over the hosts = %v after two leader crashes, want at least 1", stood)
	}
}
