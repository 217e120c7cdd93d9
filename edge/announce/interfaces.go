package announce

import (
	"context"
	"slices"
	"sync"
)

// Interfaces keeps one Run per wanted interface of an Responder: Set starts
// serving the interfaces that are new and stops those no longer wanted.
// edged's wanted set changes when MetalLB's L2Advertisements name another
// interface while it runs.
type Interfaces struct {
	ctx context.Context
	run func(ctx context.Context, name string)

	mu     sync.Mutex
	served map[string]context.CancelFunc
	wg     sync.WaitGroup
}

// NewInterfaces returns an empty set serving through run (a.Run when nil)
// until ctx ends. run is called on its own goroutine per interface; a test
// passes one that enters a network namespace first.
func (a *Responder) NewInterfaces(ctx context.Context, run func(ctx context.Context, name string)) *Interfaces {
	if run == nil {
		run = a.Run
	}
	return &Interfaces{ctx: ctx, run: run, served: map[string]context.CancelFunc{}}
}

// Set makes names the served interfaces and returns which it started and
// stopped (sorted). A stopped interface's frames end once its Serve returns.
func (s *Interfaces) Set(names []string) (started, stopped []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, cancel := range s.served {
		if !slices.Contains(names, name) {
			cancel()
			delete(s.served, name)
			stopped = append(stopped, name)
		}
	}
	for _, name := range names {
		if _, ok := s.served[name]; ok || s.ctx.Err() != nil {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.served[name] = cancel
		started = append(started, name)
		s.wg.Go(func() { s.run(ctx, name) })
	}
	slices.Sort(started)
	slices.Sort(stopped)
	return started, stopped
}

// Served returns the served interfaces, sorted.
func (s *Interfaces) Served() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.served))
	for name := range s.served {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Wait returns once every Run has returned (after ctx ended or Set
// stopped them all).
func (s *Interfaces) Wait() { s.wg.Wait() }
