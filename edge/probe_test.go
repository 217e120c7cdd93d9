package edge

import (
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// TestProbeReportsHungCall: a call that does not return fails the check
// once it has run for the bound, never blocks the check, and is not
// started twice; once it returns, checks pass again.
func TestProbeReportsHungCall(t *testing.T) {
	var p probe
	release := make(chan struct{})
	calls := 0
	hung := func() { calls++; <-release }
	start := time.Now()
	if err := p.check(100*time.Millisecond, hung); err != nil {
		t.Fatalf("first check: %v, want nil (the call just started)", err)
	}
	if time.Since(start) > 50*time.Millisecond {
		t.Error("check blocked on the call")
	}
	wait.ForBool(t, 5*time.Second, "the hung call to fail the check", func() bool {
		return p.check(100*time.Millisecond, hung) != nil
	})
	close(release)
	wait.ForBool(t, 5*time.Second, "checks to pass once the call returned", func() bool {
		return p.check(100*time.Millisecond, func() {}) == nil
	})
	if calls != 1 {
		t.Errorf("the hung call was started %d times, want once", calls)
	}
}
