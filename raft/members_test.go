package raft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/test/wait"
)

// drainedAway waits until the leader assigns host nothing, every other IP
// is settled and leased by its owner, and host holds no lease.
func (c *testCluster) drainedAway(host string, timeout time.Duration) {
	c.t.Helper()
	wait.ForBool(c.t, timeout, host+"'s IPs to be leased elsewhere", func() bool {
		_, ls := c.leader(timeout)
		now := time.Now()
		for _, a := range ls.State().Assignments {
			s := c.store(a.Owner)
			if a.Owner == "" || a.Owner == host || !a.Settled || s == nil || !holds(s.Leases(now), a.IP) {
				return false
			}
		}
		h := c.store(host)
		return h == nil || len(h.Leases(now)) == 0
	})
}

// hostState is host's HostState in s's replicated state.
func hostState(s *Store, host string) HostState {
	for _, h := range s.State().Hosts {
		if h.ID == host {
			return h
		}
	}
	return HostState{}
}

// TestAdminDrain drains a host through the log: its IPs move away, a
// follower's attempt names the leader, the drain survives a restart of the
// host and a change of leader, and undraining gives the host back exactly
// its rendezvous share.
func TestAdminDrain(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := 0; i < 30; i++ {
		c.allocate(fmt.Sprintf("ns/d-%02d", i))
	}
	c.converged(10 * time.Second)
	lid, ls := c.leader(5 * time.Second)
	victim, other := "", ""
	for _, id := range c.ids {
		switch {
		case id == lid:
		case victim == "":
			victim = id
		default:
			other = id
		}
	}
	ctx := context.Background()
	var nle *NotLeaderError
	if err := c.store(other).SetAdminDrain(ctx, victim, true); !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) ||
		nle.Leader != lid || nle.LeaderAddr != c.nodes[lid].cfg.BindAddr {
		t.Fatalf("drain on follower %s: %v, want a NotLeaderError naming %s at %s", other, err, lid, c.nodes[lid].cfg.BindAddr)
	}
	if err := ls.SetAdminDrain(ctx, "h9", true); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("drain of an unknown host: %v, want ErrUnknownMember", err)
	}
	if err := ls.SetAdminDrain(ctx, victim, true); err != nil {
		t.Fatal(err)
	}
	c.drainedAway(victim, 10*time.Second)
	c.checkNoOverlap()

	// Restart the drained host: it comes back healthy, still drained.
	if err := c.stop(victim, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.start(victim)
	wait.ForBool(t, 10*time.Second, victim+" to renew again after its restart", func() bool {
		h := hostState(ls, victim)
		return h.Healthy && !h.Draining
	})
	if h := hostState(ls, victim); !h.AdminDrained {
		t.Fatalf("%s after restart: %+v, want AdminDrained", victim, h)
	}
	c.drainedAway(victim, 10*time.Second)

	// And a new leader keeps it drained.
	if err := ls.TransferLeadership(ctx, other); err != nil {
		t.Fatalf("transfer leadership to %s: %v", other, err)
	}
	nid, nl := c.leader(10 * time.Second)
	if nid != other {
		t.Fatalf("leader after transfer is %s, want %s", nid, other)
	}
	if h := hostState(nl, victim); !h.AdminDrained || len(nl.ownedBy(victim)) > 0 {
		t.Fatalf("%s under the new leader: %+v owning %d IPs, want drained", victim, h, len(nl.ownedBy(victim)))
	}

	if err := nl.SetAdminDrain(ctx, victim, false); err != nil {
		t.Fatal(err)
	}
	c.converged(10 * time.Second)
	v := nl.State()
	all := []HostState{{ID: "h1", Healthy: true}, {ID: "h2", Healthy: true}, {ID: "h3", Healthy: true}}
	var want, got []netip.Addr
	for _, a := range v.Assignments {
		if PickOwner(a.IP, a.Pool, all, v.Eligibility) == victim {
			want = append(want, a.IP)
		}
	}
	got = nl.ownedBy(victim)
	sort.Slice(got, func(i, j int) bool { return got[i].Less(got[j]) })
	if len(want) == 0 {
		t.Fatalf("%s's rendezvous share of 30 IPs is empty; pick more IPs", victim)
	}
	if diff := cmp.Diff(fmt.Sprint(want), fmt.Sprint(got)); diff != "" {
		t.Errorf("%s's IPs after undrain (-rendezvous share +owned):\n%s", victim, diff)
	}
	c.checkNoOverlap()
}
