package raft

import (
	"context"
	"time"

	hraft "github.com/hashicorp/raft"
)

// A host counts promises only from voters of its latest configuration that
// share it (renewRequest.Voters). Majorities of two configurations one
// membership change apart intersect (raft's single-server changes), and a
// voter never promises one IP to two holders, so holders under adjacent
// configurations cannot overlap. Two changes apart they might, so the
// leader lets at least a lease plus the margin pass between a change being
// committed and the next being proposed: by then no majority of the older
// configuration still names it as its latest (one of the new
// configuration's committing majority is in every such majority), so the
// older configuration's promises have all run out before a configuration
// two changes newer exists.

// StoreConfiguration is hashicorp/raft's hook for a committed
// configuration entry (raft.ConfigurationStore): the next membership
// change waits a lease plus the margin from here.
func (f *fsm) StoreConfiguration(_ uint64, _ hraft.Configuration) {
	if f.onConfig != nil {
		f.onConfig()
	}
}

// configChanged starts the wait before the next membership change.
func (s *Store) configChanged() {
	s.configMu.Lock()
	defer s.configMu.Unlock()
	if at := time.Now().Add(s.cfg.LeaseDuration + s.cfg.ClockDriftMargin); at.After(s.configReadyAt) {
		s.configReadyAt = at
	}
}

// configChangeReady reports whether a membership change may be proposed.
func (s *Store) configChangeReady(now time.Time) bool {
	s.configMu.Lock()
	defer s.configMu.Unlock()
	return !now.Before(s.configReadyAt)
}

// gateConfigChange waits until a membership change may be proposed, or
// ctx ends.
func (s *Store) gateConfigChange(ctx context.Context) error {
	for {
		s.configMu.Lock()
		d := time.Until(s.configReadyAt)
		s.configMu.Unlock()
		if d <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}
