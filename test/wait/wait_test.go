package wait

import (
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	tests := []struct {
		name    string
		d       time.Duration
		holdAt  int // the call from which cond holds; 0 never
		want    string
		atLeast int // calls cond must have had
	}{
		{name: "holds at once", d: time.Second, holdAt: 1, atLeast: 1},
		{name: "holds on the third look", d: time.Second, holdAt: 3, atLeast: 3},
		{name: "never", d: 50 * time.Millisecond, want: "timed out after 50ms waiting for x: call", atLeast: 2},
		{name: "no time: one look", d: 0, want: "timed out after 0s waiting for x: call", atLeast: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := UntilEvery(tt.d, time.Millisecond, "x", func() (bool, string) {
				calls++
				return tt.holdAt > 0 && calls >= tt.holdAt, "call"
			})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if calls < tt.atLeast {
				t.Errorf("cond called %d times, want at least %d", calls, tt.atLeast)
			}
		})
	}
}

// TestUntilLastLook: a condition that comes true while the last sleep runs
// is seen, not reported as a timeout.
func TestUntilLastLook(t *testing.T) {
	end := time.Now().Add(30 * time.Millisecond)
	err := UntilEvery(30*time.Millisecond, time.Hour, "x", func() (bool, string) {
		return !time.Now().Before(end), ""
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUntilNoExplanation(t *testing.T) {
	err := Until(0, "x", func() (bool, string) { return false, "" })
	if err == nil || strings.HasSuffix(err.Error(), ": ") {
		t.Fatalf("error %v, want one without an empty explanation", err)
	}
}
