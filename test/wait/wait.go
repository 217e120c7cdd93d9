// Package wait is the one way edged's tests wait for something to happen:
// a poll with a deadline. A condition is checked, then re-checked every
// Interval (or a caller's interval) until it holds or the deadline passes;
// a test never sleeps a fixed time and hopes the thing happened.
//
// What every function guarantees:
//   - cond runs on the calling goroutine, so on a test's own goroutine it
//     may call t.Fatal to give up early;
//   - cond runs at least once, and a wait gives up only after a look at or
//     past the deadline, never sleeping beyond it (a d <= 0 is one look);
//   - a timeout names what was awaited, how long, and cond's last
//     explanation.
//
// It is for tests and test labs only: production code does not import it.
package wait

import (
	"fmt"
	"testing"
	"time"
)

// Interval is how often For, ForBool and Until re-check a condition:
// short next to the 100 ms to 1 s goals the tests measure, long enough that
// a dozen waits in parallel do not load a 2-core machine.
const Interval = 20 * time.Millisecond

// For polls cond every Interval until it holds; if it still does not hold
// after d, it fails the test with what and cond's last explanation.
func For(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := UntilEvery(d, Interval, what, cond); err != nil {
		t.Fatal(err)
	}
}

// ForBool is For for a condition that has nothing to explain.
func ForBool(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	For(t, d, what, func() (bool, string) { return cond(), "" })
}

// Until polls cond every Interval until it holds and returns nil, or
// returns an error naming what and cond's last explanation after d; for
// callers that report the failure and go on.
func Until(d time.Duration, what string, cond func() (bool, string)) error {
	return UntilEvery(d, Interval, what, cond)
}

// UntilEvery is Until polling every interval: longer for conditions that
// are expensive to check (a list of every Service), shorter where the wait
// is itself a measurement.
func UntilEvery(d, interval time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(d)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if msg == "" {
				return fmt.Errorf("timed out after %v waiting for %s", d, what)
			}
			return fmt.Errorf("timed out after %v waiting for %s: %s", d, what, msg)
		}
		time.Sleep(min(interval, left)) // poll interval, not synchronisation
	}
}
