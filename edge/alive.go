package edge

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Liveness is implemented by a Part (or the Announcer) that can tell
// whether its loops still make progress, typically with a
// notify.Heartbeat its loop beats on every turn. Alive must return at once;
// a non-nil error names what is stuck. A component that does not implement
// it counts as alive.
type Liveness interface {
	Alive() error
}

// liveBound is how long the appliance's own loops may go without progress
// before the watchdog stops being fed. The serve loop turns at least every
// quarter lease (50 ms by default), so 5 s is a hundred missed turns, and
// half the unit's WatchdogSec (10 s): systemd restarts a stuck edged within
// about 10 s of the hang.
const liveBound = 5 * time.Second

// Alive reports whether every loop of this host still makes progress: the
// main loop handing leases to the announcer, the raft store (a local read,
// bounded by liveBound), and every part and the announcer that implement
// Liveness. It is the systemd watchdog's check: while it returns an error
// (naming what is stuck) no WATCHDOG=1 is sent, and systemd restarts edged
// after WatchdogSec. Liveness is not readiness: a host cut off from its
// peers has no leader and is not ready, but its loops run, so it is alive.
func (a *Appliance) Alive() error {
	var errs []error
	if err := a.serveBeat.Check("main loop", a.serveBound()); err != nil {
		errs = append(errs, err)
	}
	if store := a.Store(); store != nil {
		if err := a.raftProbe.check(liveBound, func() {
			store.Stats()
			store.LeaseSet(time.Now())
		}); err != nil {
			errs = append(errs, fmt.Errorf("raft store: %w", err))
		}
	}
	if l, ok := a.announcer.(Liveness); ok {
		if err := l.Alive(); err != nil {
			errs = append(errs, fmt.Errorf("announcer: %w", err))
		}
	}
	for _, p := range a.parts {
		if l, ok := p.(Liveness); ok {
			if err := l.Alive(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// serveBound is how long the serve loop may go without a turn: liveBound,
// or four turns when a long raft.leaseDuration makes its ticks slower.
func (a *Appliance) serveBound() time.Duration {
	return max(liveBound, 4*leaseTick(a.cfg.Raft.LeaseDuration))
}

// probe runs a call that may hang (a read of a component that may be
// wedged) without ever blocking its caller: check starts the call in the
// background unless one is still running, and fails once that one has run
// longer than the bound. At most one call is in flight, so a hung
// component costs one goroutine, not one per check.
type probe struct {
	mu      sync.Mutex
	started time.Time // of the call in flight; zero: none
}

// check starts call unless one is in flight, and returns an error when the
// one in flight has run longer than bound.
func (p *probe) check(bound time.Duration, call func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started.IsZero() {
		if since := time.Since(p.started); since >= bound {
			return fmt.Errorf("a read has not returned for %v (bound %v)", since.Round(time.Millisecond), bound)
		}
		return nil
	}
	p.started = time.Now()
	go func() {
		call()
		p.mu.Lock()
		p.started = time.Time{}
		p.mu.Unlock()
	}()
	return nil
}
