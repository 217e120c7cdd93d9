package raft

import (
	"context"
	"errors"
	"time"

	hraft "github.com/hashicorp/raft"
)

// closePoll is how often Close re-checks a hand-over or leave step.
const closePoll = 10 * time.Millisecond

// Close shuts this host down in order, each step bounded by ctx: stop
// taking writes; hand this host's IPs over (it asks the leader to mark it
// draining, and waits until the IPs are assigned elsewhere and the leader
// knows it holds no lease); drop every lease; leave the group if
// LeaveOnShutdown, else hand leadership away; stop the loops; shut raft
// down; close the transport and the log store. If ctx ends first, the
// remaining hand-over steps are skipped: the leader then moves the IPs
// once this host's lease expires. With no leader for two election timeouts
// the hand-over is skipped too (nobody could take the IPs).
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Store) close(ctx context.Context) error {
	log := s.cfg.Logger
	s.closing.Store(true)
	s.draining.Store(true)
	s.kickRenew()
	start := time.Now()
	handed := func() bool {
		if s.handedOver() {
			return true
		}
		// No leader for two election timeouts (a majority is down):
		// nobody can take the IPs over and nobody renews this host's
		// leases, which end by themselves; waiting only delays the exit.
		if id, _ := s.Leader(); id == "" && time.Since(start) > 2*s.cfg.ElectionTimeout {
			log.Warn("raft close: no leader to hand the IPs over to (is a majority down?); not waiting")
			return true
		}
		return false
	}
	if !s.waitUntil(ctx, handed) {
		log.Warn("raft close: hand-over incomplete, leases will expire instead", "err", ctx.Err())
	}
	s.dropLeases()
	s.subs.Notify()
	if s.cfg.LeaveOnShutdown {
		s.leave(ctx)
	} else if s.IsLeader() {
		if err := s.raft.LeadershipTransfer().Error(); err != nil {
			log.Debug("leadership transfer on close failed", "err", err)
		}
	}
	close(s.stop)
	s.wg.Wait()
	err := s.raft.Shutdown().Error()
	s.closeTransport()
	if err != nil {
		return err
	}
	log.Info("raft store closed")
	return nil
}

// handedOver reports whether the state assigns nothing to this host, it
// holds no lease, a majority of the voters heard so, and the new owners
// hold the IPs (settled).
func (s *Store) handedOver() bool {
	if len(s.ownedBy(s.cfg.NodeID)) > 0 {
		s.kickRenew()
		return false
	}
	if s.onlyHost() {
		return true
	}
	// Every voter we reach hears that we hold nothing of what it promised,
	// and releases it for the new owners.
	if !s.renewOnce() || len(s.heldIPs(time.Now())) > 0 {
		return false
	}
	// Wait until the moved IPs are settled in the log too, so that if this
	// host leads and hands leadership over, the next leader may grant them
	// at once instead of waiting out its fence.
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return len(s.fsm.unsettled) == 0
}

// onlyHost reports whether no other host exists to take the IPs over (then
// there is nothing to hand over to).
func (s *Store) onlyHost() bool {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	for id, h := range s.fsm.hosts {
		if id != s.cfg.NodeID && h.eligible() {
			return false
		}
	}
	return true
}

func (s *Store) leave(ctx context.Context) {
	log := s.cfg.Logger
	if s.IsLeader() {
		if err := s.gateConfigChange(ctx); err != nil {
			log.Warn("raft close: leaving the group failed", "err", err)
			return
		}
		if err := s.raft.RemoveServer(hraft.ServerID(s.cfg.NodeID), 0, timeoutOf(ctx)).Error(); err != nil {
			log.Warn("raft close: leaving the group failed", "err", err)
		}
		return
	}
	s.leaving.Store(true)
	left := func() bool {
		s.kickRenew()
		f := s.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		for _, sv := range f.Configuration().Servers {
			if string(sv.ID) == s.cfg.NodeID {
				return false
			}
		}
		return true
	}
	if !s.waitUntil(ctx, left) {
		log.Warn("raft close: leader did not remove this host in time", "err", ctx.Err())
	}
}

func (s *Store) waitUntil(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(closePoll)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (s *Store) closeTransport() {
	var errs []error
	if s.trans != nil {
		errs = append(errs, s.trans.Close())
	}
	if s.stream != nil {
		errs = append(errs, s.stream.Close())
		s.stream.wg.Wait()
	}
	if s.bolt != nil {
		errs = append(errs, s.bolt.Close())
	}
	if err := errors.Join(errs...); err != nil {
		s.cfg.Logger.Debug("closing raft transport", "err", err)
	}
}
