package raft

import (
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// TestStateChangesSkipRenewals checks that StateChanges fires on an applied
// change but not on lease renewals, which Changes still reports.
func TestStateChangesSkipRenewals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft store")
	}
	c := newTestCluster(t, 1, nil)
	c.setPools(refPool(), nil)
	_, s := c.leader(10 * time.Second)
	c.allocate("default/web")
	wait.ForBool(t, 10*time.Second, "a lease for default/web", func() bool { return len(s.Leases(time.Now())) == 1 })

	all, unsubAll := s.Changes()
	defer unsubAll()
	state, unsubState := s.StateChanges()
	defer unsubState()
	drain := func(ch <-chan struct{}) {
		select {
		case <-ch:
		default:
		}
	}
	// Let the leader settle (host updates after the election), then
	// watch a few renewal periods with no writes.
	wait.ForBool(t, 10*time.Second, "no state change for 4 lease periods", func() bool {
		drain(state)
		select {
		case <-state:
			return false
		case <-time.After(4 * s.cfg.LeaseDuration):
			return true
		}
	})
	drain(all)
	renewals := 0
	deadline := time.After(4 * s.cfg.LeaseDuration)
loop:
	for {
		select {
		case <-all:
			renewals++
		case <-state:
			t.Fatal("StateChanges fired without a write")
		case <-deadline:
			break loop
		}
	}
	if renewals == 0 {
		t.Errorf("Changes did not report a lease renewal in %v", 4*s.cfg.LeaseDuration)
	}
	c.allocate("default/db")
	select {
	case <-state:
	case <-time.After(5 * time.Second):
		t.Fatal("StateChanges did not fire after an allocation")
	}
}
