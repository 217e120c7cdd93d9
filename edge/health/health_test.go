package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

var errDown = errors.New("down")

// TestStepHysteresis walks the verdict through synthetic rounds: it falls
// only after FailAfter failed rounds in a row and rises only after every
// probe passed for RecoverAfter without a failure in between.
func TestStepHysteresis(t *testing.T) {
	cfg := Config{FailAfter: 2, RecoverAfter: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ok, bad := []error{nil, nil}, []error{nil, errDown}
	steps := []struct {
		at      float64
		errs    []error
		healthy bool
		changed bool
	}{
		{0, ok, true, false},
		{1, bad, true, false}, // one failure is not enough
		{2, ok, true, false},  // and the count restarts
		{3, bad, true, false},
		{4, bad, false, true}, // two in a row
		{5, bad, false, false},
		{6, ok, false, false}, // passing since 6
		{15, ok, false, false},
		{15.5, bad, false, false}, // a failure restarts the wait
		{16, ok, false, false},    // passing since 16
		{25.9, ok, false, false},
		{26, ok, true, true},
		{27, bad, true, false},
		{27.5, ok, true, false},
		{28, []error{nil, fmt.Errorf("refused: %w", ErrGone)}, false, true}, // gone: at once
	}
	s := state{healthy: true}
	for _, st := range steps {
		changed := s.step(at(st.at), st.errs, cfg)
		if s.healthy != st.healthy || changed != st.changed {
			t.Fatalf("at %vs: healthy %t changed %t, want %t %t", st.at, s.healthy, changed, st.healthy, st.changed)
		}
	}
}

// setter records what the Monitor tells raft.
type setter struct {
	mu   sync.Mutex
	told []bool
}

func (s *setter) SetLocalHealthy(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.told = append(s.told, ok)
}

func (s *setter) calls() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.told...)
}

// TestMonitorTellsOnChange runs the Monitor over a probe the test breaks
// and mends: raft is told the first verdict, then only changes; a probe
// that hangs counts as failed after Timeout.
func TestMonitorTellsOnChange(t *testing.T) {
	var mode atomic.Int32 // 0 pass, 1 fail, 2 hang
	probe := Probe{Name: "p", Check: func(ctx context.Context) error {
		switch mode.Load() {
		case 1:
			return errDown
		case 2:
			<-ctx.Done()
			return nil // a probe that ignores its deadline's error still fails
		}
		return nil
	}}
	m := New(Config{Interval: 5 * time.Millisecond, Timeout: 20 * time.Millisecond, FailAfter: 2, RecoverAfter: 30 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)), probe)
	to := &setter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.run(ctx, to) }()
	defer func() { cancel(); <-done }()

	told := func(want ...bool) {
		t.Helper()
		wait.ForBool(t, 5*time.Second, "raft told "+describe(want), func() bool {
			got := to.calls()
			if len(got) != len(want) {
				return false
			}
			for i := range got {
				if got[i] != want[i] {
					return false
				}
			}
			return true
		})
	}
	told(true)
	mode.Store(1)
	told(true, false)
	if m.Healthy() {
		t.Fatal("Healthy() true after raft was told false")
	}
	mode.Store(0)
	told(true, false, true)
	mode.Store(2)
	told(true, false, true, false)
}

func describe(v []bool) string {
	out := "["
	for i, b := range v {
		if i > 0 {
			out += " "
		}
		if b {
			out += "healthy"
		} else {
			out += "unhealthy"
		}
	}
	return out + "]"
}

// TestNoProbesNeverTells: a host with every probe turned off tells raft
// nothing, so SetLocalHealthy's default (healthy) stands.
func TestNoProbesNeverTells(t *testing.T) {
	m := New(Config{Interval: time.Millisecond, Timeout: time.Millisecond, FailAfter: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	to := &setter{}
	if err := m.run(context.Background(), to); err != nil {
		t.Fatal(err)
	}
	if len(to.calls()) != 0 || !m.Healthy() {
		t.Fatalf("told %v, healthy %t", to.calls(), m.Healthy())
	}
}

// TestStartingNeedsOnePass: a starting host stays unhealthy through any
// number of failed rounds and becomes healthy at its first passing round,
// without waiting RecoverAfter.
func TestStartingNeedsOnePass(t *testing.T) {
	cfg := Config{FailAfter: 2, RecoverAfter: time.Hour}
	s := state{starting: true}
	now := time.Unix(0, 0)
	for i := 0; i < 5; i++ {
		if s.step(now, []error{errDown}, cfg) || s.healthy {
			t.Fatalf("round %d failed: healthy %t, want still starting", i, s.healthy)
		}
	}
	if !s.step(now, []error{nil}, cfg) || !s.healthy || s.starting {
		t.Fatalf("first pass: healthy %t starting %t, want healthy at once", s.healthy, s.starting)
	}
}
