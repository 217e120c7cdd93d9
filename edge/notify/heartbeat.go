package notify

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Heartbeat is a loop's proof of progress: the loop calls Beat on every
// turn, and the watchdog check calls Check. The zero value is ready to use
// and safe for concurrent use.
type Heartbeat struct {
	last atomic.Int64 // unix nanoseconds of the last Beat; 0: none yet
}

// Beat records progress now.
func (h *Heartbeat) Beat() { h.last.Store(time.Now().UnixNano()) }

// Check returns an error naming what when the last Beat is older than
// bound. A loop that has not beaten yet (still starting) passes: starting
// is bounded by the unit's start timeout, not by the watchdog.
func (h *Heartbeat) Check(what string, bound time.Duration) error {
	last := h.last.Load()
	if last == 0 {
		return nil
	}
	if since := time.Since(time.Unix(0, last)); since > bound {
		return fmt.Errorf("%s made no progress for %v (bound %v)", what, since.Round(time.Millisecond), bound)
	}
	return nil
}
