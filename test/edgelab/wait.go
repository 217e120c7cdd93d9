package edgelab

import (
	"fmt"
	"time"
)

// pollInterval is how often waitFor re-checks a condition: short next to
// the 1 s goals the lab measures, long enough that a dozen waits in
// parallel do not load a 2-core machine.
const pollInterval = 20 * time.Millisecond

// waitFor polls cond every pollInterval until it holds or d has passed,
// and returns an error naming what and cond's last explanation. It has the
// shape of the waitFor helpers in test/haproxylab and edge/kube (those are
// private to their _test packages, so the lab cannot import them); it
// returns the error instead of failing, so a check can report and go on.
func waitFor(d time.Duration, what string, cond func() (bool, string)) error {
	return waitEvery(d, pollInterval, what, cond)
}

// waitEvery is waitFor polling every interval, for conditions that are
// expensive to check (a list of every Event in the cluster).
func waitEvery(d, interval time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(d)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %s", d, what, msg)
		}
		time.Sleep(interval)
	}
}
