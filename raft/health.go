package raft

import (
	"strconv"

	hraft "github.com/hashicorp/raft"
)

// SetLocalHealthy says whether this host can serve what it announces (its
// HAProxy answers, its announce interface has carrier). While it is false
// the host asks the leader, with every renewal, to treat it as draining:
// its IPs are assigned to other eligible hosts and it is granted no new
// lease. Setting it back makes the host eligible again at the next
// renewal. Closing drains the host whatever this says. The call is cheap
// and may be made on every probe; only a change wakes the renewal loop.
func (s *Store) SetLocalHealthy(ok bool) {
	if s.unhealthy.Swap(!ok) == !ok {
		return
	}
	if ok {
		s.cfg.Logger.Info("local health restored: asking to announce again")
	} else {
		s.cfg.Logger.Warn("local health failed: asking the leader to move this host's IPs")
	}
	s.kickRenew()
	s.kickReconcile()
}

// LocalHealthy reports the last value given to SetLocalHealthy (true until
// the first call).
func (s *Store) LocalHealthy() bool { return !s.unhealthy.Load() }

// wantsDrain is what this host asks of the leader: no IPs, because it is
// shutting down or because it cannot serve them.
func (s *Store) wantsDrain() bool { return s.draining.Load() || s.unhealthy.Load() }

// CaughtUp reports whether this replica's state holds what the group had
// committed when this replica (re)joined it: on the leader once it applied
// everything committed before its term (the barrier after its election);
// on a follower once it heard from a leader and applied up to the commit
// index that leader sent. Before that a restarted host's state is its last
// snapshot, older than the group's; what is rendered from it (HAProxy's
// frontends) would drop Services created since. Once true it stays true.
func (s *Store) CaughtUp() bool {
	if s.caughtUp.Load() {
		return true
	}
	ok := false
	if s.raft.State() == hraft.Leader {
		ok = s.ldr.Load() != nil
	} else if !s.raft.LastContact().IsZero() {
		commit, err := strconv.ParseUint(s.raft.Stats()["commit_index"], 10, 64)
		ok = err == nil && commit > 0 && s.raft.AppliedIndex() >= commit
	}
	if ok {
		s.caughtUp.Store(true)
	}
	return ok
}
