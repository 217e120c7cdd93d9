package l2

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/test/wait"
)

// waitTimeout bounds every wait: the conditions hold within milliseconds.
const waitTimeout = 5 * time.Second

// TestFollowLinks: serving every interface, edged starts serving one
// created after start and lets a deleted one go, on the next look.
func TestFollowLinks(t *testing.T) {
	var mu sync.Mutex
	running := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Speaker{log: slog.New(slog.DiscardHandler)}
	s.served = announce.NewResponder().NewInterfaces(ctx, func(ctx context.Context, name string) {
		mu.Lock()
		running[name] = true
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		delete(running, name)
		mu.Unlock()
	})
	s.serve([]string{"eth0"})
	links := make(chan []string, 1)
	list := func() ([]string, error) {
		select {
		case l := <-links:
			return l, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); s.followLinks(ctx, time.Millisecond, []string{"bond0"}, list) }()
	t.Cleanup(func() { cancel(); <-done; s.served.Wait() })

	// look hands followLinks one listing and waits until it served want.
	look := func(want []string, sys ...string) {
		t.Helper()
		links <- sys
		wait.For(t, waitTimeout, fmt.Sprintf("%v served after the listing %v", want, sys), func() (bool, string) {
			s.mu.Lock()
			got := s.served.Served()
			s.mu.Unlock()
			return slices.Equal(got, want), fmt.Sprintf("served %v", got)
		})
	}
	look([]string{"bond0", "eth0", "eth1"}, "eth0", "eth1") // eth1 appeared; bond0 is named in the config
	look([]string{"bond0", "eth1"}, "eth1")                 // eth0 went away
	wait.For(t, waitTimeout, "eth0's Run to stop and eth1's to start", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return !running["eth0"] && running["eth1"], fmt.Sprintf("running %v", running)
	})
}
