package haproxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goldentooth/edged/test/wait"
)

func httpModel(vip netip.AddrPort, servers ...*backendSrv) Model {
	b := Backend{Name: "default_web_80", Mode: ModeHTTP, Check: Check{Kind: CheckHTTP, Path: "/healthz", Interval: 100 * time.Millisecond, Rise: 1, Fall: 1}}
	for _, s := range servers {
		b.Servers = append(b.Servers, Server{Addr: s.addr})
	}
	return Model{
		Frontends: []Frontend{{Name: "default_web_80", Bind: vip, Mode: ModeHTTP, Backend: b.Name}},
		Backends:  []Backend{b},
	}
}

// seen collects response bodies from n requests.
func seen(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		body, err := get(addr)
		if err != nil {
			t.Fatalf("GET %s: %v", addr, err)
		}
		out[body]++
	}
	return out
}

func mustProc(t *testing.T, l *lab) Proc {
	t.Helper()
	p, err := l.paths.Proc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManagerLive(t *testing.T) {
	ctx := context.Background()
	l := mustLab(t)
	vip := netip.AddrPortFrom(l.vip, freePort(t, "127.0.0.1"))
	a, b, c := mustBackend(t, "a"), mustBackend(t, "b"), mustBackend(t, "c")
	m := NewManager(ManagerConfig{Paths: l.paths})

	r := m.Apply(ctx, httpModel(vip, a, b))
	if r.Err != nil || !r.Reloaded {
		t.Fatalf("first apply = %+v, want a clean reload", r)
	}
	wait.ForBool(t, 5*time.Second, "both servers serving", func() bool {
		s := seen(t, vip.String(), 10)
		return s["a"] > 0 && s["b"] > 0
	})
	base := mustProc(t, l)

	t.Run("endpoints through runtime API", func(t *testing.T) {
		r := m.Apply(ctx, httpModel(vip, b, c))
		if r.Err != nil || r.Reloaded || r.Ops == 0 {
			t.Fatalf("apply = %+v, want runtime ops and no reload", r)
		}
		wait.ForBool(t, 5*time.Second, "traffic on b and c only", func() bool {
			s := seen(t, vip.String(), 10)
			return s["a"] == 0 && s["b"] > 0 && s["c"] > 0
		})
		if got := mustProc(t, l); got.Reloads != base.Reloads {
			t.Errorf("reload counter %d, want unchanged %d", got.Reloads, base.Reloads)
		}
	})

	t.Run("failing health check takes a server out", func(t *testing.T) {
		c.healthy.Store(false)
		defer c.healthy.Store(true)
		wait.ForBool(t, 5*time.Second, "c marked down", func() bool {
			s := seen(t, vip.String(), 10)
			return s["c"] == 0 && s["b"] == 10
		})
	})

	t.Run("broken render is refused and old config serves", func(t *testing.T) {
		bad := httpModel(vip, b, c)
		bad.Frontends[0].CertFile = "/nonexistent/edged-test.pem"
		r := m.Apply(ctx, bad)
		if got := testutil.ToFloat64(failuresTotal.WithLabelValues("validate")); got < 1 {
			t.Errorf("edged_haproxy_failures_total{stage=validate} = %v, want >= 1", got)
		}
		if !errors.Is(r.Err, ErrValidate) || r.Reloaded {
			t.Fatalf("apply = %+v, want ErrValidate without reload", r)
		}
		if s := seen(t, vip.String(), 4); s["b"]+s["c"] != 4 {
			t.Errorf("old config not serving: %v", s)
		}
		if got := mustProc(t, l); got.Reloads != base.Reloads {
			t.Errorf("reload counter %d, want %d", got.Reloads, base.Reloads)
		}
	})

	t.Run("failed reload keeps old worker and file", func(t *testing.T) {
		// 192.0.2.1 (TEST-NET-1) passes haproxy -c but cannot be bound at
		// load time: no packet is ever sent.
		mod := httpModel(vip, b, c)
		mod.Frontends = append(mod.Frontends, Frontend{Name: "unbindable", Bind: netip.MustParseAddrPort("192.0.2.1:80"), Backend: mod.Backends[0].Name})
		before, _ := os.ReadFile(l.paths.Config)
		r := m.Apply(ctx, mod)
		if !errors.Is(r.Err, ErrReload) {
			t.Skipf("reload did not fail (ip_nonlocal_bind=1?): %+v", r)
		}
		if after, _ := os.ReadFile(l.paths.Config); string(after) != string(before) {
			t.Error("live file not restored after a failed reload")
		}
		if s := seen(t, vip.String(), 4); s["b"]+s["c"] != 4 {
			t.Errorf("old worker not serving: %v", s)
		}
		base = mustProc(t, l) // the failed attempt moved the counters
		// The old worker still serves the old structure, and edged knows
		// it: going back to it needs no reload.
		if r := m.Apply(ctx, httpModel(vip, b, c)); r.Err != nil || r.Reloaded {
			t.Fatalf("apply of the serving model after a failed reload = %+v, want no reload", r)
		}
	})

	t.Run("structural reload under load loses nothing", func(t *testing.T) {
		stop := make(chan struct{})
		ld := startLoad(vip.String(), stop)
		opLoad := startLoad(l.opAddr, stop)
		wait.ForBool(t, 5*time.Second, "load running", func() bool { return ld.ok.Load() > 20 })
		okBefore := testutil.ToFloat64(reloadsTotal.WithLabelValues("ok"))
		defer func() {
			if got := testutil.ToFloat64(reloadsTotal.WithLabelValues("ok")) - okBefore; got != 3 {
				t.Errorf("edged_haproxy_reloads_total{result=ok} grew by %v, want 3", got)
			}
		}()
		for i := range 3 {
			mod := httpModel(vip, b, c)
			mod.Backends[0].Balance = []string{"leastconn", "roundrobin", "first"}[i]
			if r := m.Apply(ctx, mod); r.Err != nil || !r.Reloaded {
				t.Fatalf("reload %d = %+v", i, r)
			}
		}
		close(stop)
		<-ld.done
		<-opLoad.done
		if ld.failed.Load() != 0 || opLoad.failed.Load() != 0 {
			t.Errorf("failed requests: vip %d (last %v), operator %d", ld.failed.Load(), ld.lastErr.Load(), opLoad.failed.Load())
		}
		t.Logf("requests during 3 reloads: vip ok=%d operator ok=%d", ld.ok.Load(), opLoad.ok.Load())
		if got := mustProc(t, l); got.Reloads != base.Reloads+3 || got.Failed != 0 { // a good reload resets the failed count
			t.Errorf("show proc = %+v, want 3 more reloads, none failed", got)
		}
	})

	t.Run("operator frontend keeps working", func(t *testing.T) {
		if body, err := get(l.opAddr); err != nil || body != "operator" {
			t.Errorf("operator frontend = %q, %v", body, err)
		}
	})
}

func TestReloadFailureKeepsOldWorker(t *testing.T) {
	ctx := context.Background()
	l := mustLab(t)
	before := mustProc(t, l)
	// Break the live file behind edged's back: a reload must be reported
	// as failed and the old worker must keep serving.
	if _, err := WriteFileAtomic(l.paths.Config, []byte("frontend x\n  bogus-keyword\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.paths.Reload(ctx)
	if !errors.Is(err, ErrReload) {
		t.Fatalf("Reload = %v, want ErrReload", err)
	}
	after := mustProc(t, l)
	if after.Workers[0] != before.Workers[0] {
		t.Errorf("worker changed from %d to %d after a failed reload", before.Workers[0], after.Workers[0])
	}
	if body, err := get(l.opAddr); err != nil || !strings.Contains(body, "operator") {
		t.Errorf("operator frontend after failed reload = %q, %v", body, err)
	}
}

// TestManagerIPv6: an IPv6 frontend and IPv6 servers render, load and
// serve, and an endpoint change moves a slot to another IPv6 address and
// port through the runtime API, without a reload (IPv6 loopback only).
func TestManagerIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	ctx := context.Background()
	l := mustLab(t)
	vip := netip.AddrPortFrom(netip.IPv6Loopback(), freePort(t, "[::1]"))
	a, b := mustBackendAt(t, "a", "[::1]:0"), mustBackendAt(t, "b", "[::1]:0")
	m := NewManager(ManagerConfig{Paths: l.paths})
	if r := m.Apply(ctx, httpModel(vip, a)); r.Err != nil || !r.Reloaded {
		t.Fatalf("first apply = %+v, want a clean reload", r)
	}
	serves := func(name string) func() bool {
		return func() bool { body, err := get(vip.String()); return err == nil && body == name }
	}
	wait.ForBool(t, 5*time.Second, "a serving on "+vip.String(), serves("a"))
	base := mustProc(t, l)
	r := m.Apply(ctx, httpModel(vip, b))
	if r.Err != nil || r.Reloaded || r.Ops == 0 {
		t.Fatalf("apply = %+v, want runtime ops and no reload", r)
	}
	wait.ForBool(t, 5*time.Second, "b serving after the runtime change", serves("b"))
	if got := mustProc(t, l); got.Reloads != base.Reloads {
		t.Errorf("reload counter %d, want unchanged %d", got.Reloads, base.Reloads)
	}
}
