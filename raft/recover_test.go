package raft

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/test/wait"
)

// TestRecoverAfterLosingMajority loses two of three hosts for good, runs
// Recover (what `edged recover` runs) on the survivor while it is stopped,
// and reopens it: it leads alone and leases every allocated IP, with no
// allocation changed. Then both lost hosts come back with their old data
// dirs: they form their old group between them, and the survivor's
// transport refuses them, so it never steps down, its configuration stays
// itself alone and its IPs stay where they are.
func TestRecoverAfterLosingMajority(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := 0; i < 20; i++ {
		c.allocate(fmt.Sprintf("ns/r-%02d", i))
	}
	c.converged(10 * time.Second)
	const survivor = "h1"
	before := c.store(survivor).State().Allocations
	oldID := c.store(survivor).ClusterID()
	if want := deriveBootstrapID(c.nodes[survivor].cfg.Peers); oldID != want {
		t.Fatalf("bootstrapped cluster ID %s, want %s (derived from the peers)", oldID, want)
	}
	for _, id := range c.ids {
		if got := c.store(id).ClusterID(); got != oldID {
			t.Fatalf("%s has cluster ID %s, %s has %s: bootstrapped hosts must agree", id, got, survivor, oldID)
		}
	}

	// Offline only: a running host's data dir is locked.
	if _, err := Recover(c.nodes[survivor].cfg, nil, nil); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("Recover while the host runs: %v, want ErrDataDirInUse", err)
	}
	for _, id := range c.ids {
		c.crash(id) // h2, h3 for good; h1 stopped for the recovery
	}
	plan, err := Recover(c.nodes[survivor].cfg, nil, func(p RecoveryPlan) error {
		if len(p.Last) != 3 {
			return fmt.Errorf("plan shows last configuration %v, want 3 hosts", p.Last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantMembers := []Peer{{ID: survivor, Address: c.nodes[survivor].cfg.BindAddr}}
	if diff := cmp.Diff(wantMembers, plan.Members); diff != "" {
		t.Errorf("recovered members (-want +got):\n%s", diff)
	}
	if plan.Previous != oldID || plan.ID == oldID || plan.ID.IsZero() {
		t.Errorf("recovery IDs: previous %s, new %s; want previous %s and a new one", plan.Previous, plan.ID, oldID)
	}

	s := c.start(survivor)
	c.converged(10 * time.Second)
	if lid, _ := c.leader(5 * time.Second); lid != survivor {
		t.Fatalf("leader after recovery is %s, want %s", lid, survivor)
	}
	if diff := cmp.Diff(fmt.Sprint(before), fmt.Sprint(s.State().Allocations)); diff != "" {
		t.Errorf("allocations changed by the recovery (-before +after):\n%s", diff)
	}
	for ip, o := range owners(s) {
		if o != survivor {
			t.Errorf("%s owned by %s after recovery, want %s", ip, o, survivor)
		}
	}
	if s.ClusterID() != plan.ID {
		t.Errorf("reopened survivor has cluster ID %s, want the recovered %s", s.ClusterID(), plan.ID)
	}
	term := s.raft.CurrentTerm()
	ownedBefore := fmt.Sprint(owners(s))

	// The lost hosts come back with their old data.
	c.start("h2")
	c.start("h3")
	var oldLeader *Store
	wait.ForBool(t, 10*time.Second, "the old members to elect a leader between them", func() bool {
		for _, id := range []string{"h2", "h3"} {
			if st := c.store(id); st.IsLeader() {
				oldLeader = st
				return true
			}
		}
		return false
	})
	// Without the cluster ID check, the old leader's heartbeats (same or
	// higher term) would make the survivor step down and follow it.
	base := s.stream.ident.refused.Load()
	wait.ForBool(t, 10*time.Second, "the survivor to refuse the old leader's connections (or to step down)", func() bool {
		return s.stream.ident.refused.Load() >= base+3 || !s.IsLeader() || s.raft.CurrentTerm() != term
	})
	if !s.IsLeader() || s.raft.CurrentTerm() != term {
		t.Errorf("survivor: leader %v term %d, want still leader in term %d (old leader %s, term %d)",
			s.IsLeader(), s.raft.CurrentTerm(), term, oldLeader.ID(), oldLeader.raft.CurrentTerm())
	}
	servers, err := s.configuration()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 1 || string(servers[0].ID) != survivor {
		t.Errorf("survivor's configuration %v, want %s alone", servers, survivor)
	}
	if got := fmt.Sprint(owners(s)); got != ownedBefore {
		t.Errorf("survivor's assignments changed after the old members returned:\nbefore %s\nafter  %s", ownedBefore, got)
	}
}
