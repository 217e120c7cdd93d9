package haproxy

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

func TestRunCoalescesBursts(t *testing.T) {
	l := mustLab(t)
	a, b := mustBackend(t, "a"), mustBackend(t, "b")
	vip := netip.AddrPortFrom(testVIP(13), freePort(t, "127.0.0.1"))
	results := make(chan Result, 100)
	m := NewManager(ManagerConfig{Paths: l.paths, Window: 300 * time.Millisecond, OnResult: func(r Result) { results <- r }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	base := mustProc(t, l)
	// A burst of structural changes (new frontend, then ten balance flips).
	for i := range 10 {
		mod := httpModel(vip, a)
		mod.Backends[0].Balance = []string{"roundrobin", "leastconn"}[i%2]
		m.Update(mod)
	}
	select {
	case r := <-results:
		if r.Err != nil || !r.Reloaded {
			t.Fatalf("burst result = %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no apply within 10s")
	}
	if got := mustProc(t, l); got.Reloads != base.Reloads+1 {
		t.Errorf("reloads = %d, want %d (one for the whole burst)", got.Reloads, base.Reloads+1)
	}
	// A runtime-only change is applied at once, without a reload.
	mod := httpModel(vip, a, b)
	mod.Backends[0].Balance = "leastconn"
	m.Update(mod)
	select {
	case r := <-results:
		if r.Err != nil || r.Reloaded {
			t.Fatalf("endpoint change result = %+v, want runtime only", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no apply within 10s")
	}
	wait.ForBool(t, 5*time.Second, "b serving", func() bool { return seen(t, vip.String(), 10)["b"] > 0 })
}

func TestResyncAfterExternalReload(t *testing.T) {
	ctx := context.Background()
	l := mustLab(t)
	a, b := mustBackend(t, "a"), mustBackend(t, "b")
	vip := netip.AddrPortFrom(testVIP(14), freePort(t, "127.0.0.1"))
	m := NewManager(ManagerConfig{Paths: l.paths})
	if r := m.Apply(ctx, httpModel(vip, a)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := m.Apply(ctx, httpModel(vip, b)); r.Err != nil || r.Reloaded {
		t.Fatalf("runtime apply = %+v", r)
	}
	// The operator reloads: the file still names a, so a serves again.
	if _, err := l.paths.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 5*time.Second, "file state after external reload", func() bool { return seen(t, vip.String(), 4)["a"] == 4 })
	if err := m.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 5*time.Second, "b after resync", func() bool { return seen(t, vip.String(), 4)["b"] == 4 })
}
