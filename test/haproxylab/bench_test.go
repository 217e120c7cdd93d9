package haproxylab

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/wait"
)

// BenchmarkLabChurn makes b.N endpoint changes through the apiserver
// (EndpointSlice updates with client-go: one pod out, another in) under
// continuous HTTP load from the client namespace, and reports failed
// requests, HAProxy reloads and change-to-live latency (from the update
// call until `show servers state` shows the new pod up). "runtime" is
// edged (proxy.Part: runtime API into server slots); "reload" is the
// baseline: the same informers and lbconfig.Build, but every change is
// applied with a render + validate + reload. Run with -benchtime=1000x.
func BenchmarkLabChurn(b *testing.B) {
	e := newEnv(b)
	pool := make([]*pod, 6)
	for i := range pool {
		pool[i] = e.startPod(b, fmt.Sprintf("p%d", i))
	}
	ann := httpChecked()
	ann[lbconfig.AnnCheckInterval] = "100ms"
	ann[lbconfig.AnnCheckFall] = "3" // HAProxy's default
	const svc = "churn"
	e.service(b, svc, 80, ann)
	vip := e.vip(b, svc)
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(vip, 80))
	c := &churner{e: e, pool: pool, active: pool[:4:4], url: url, be: e.backendName(svc, 80)}
	e.setEndpoints(b, svc, c.endpoints()...)

	b.Run("runtime", func(b *testing.B) {
		e.startPart(b) // stopped at the end of each run
		c.run(b)
	})
	b.Run("reload", func(b *testing.B) {
		e.stopPart()
		c.startBaseline(b)
		c.run(b)
	})
}

// churner rotates a Service's endpoints through a pool of pods.
type churner struct {
	e      *env
	pool   []*pod
	active []*pod
	url    string
	be     string
}

func (c *churner) endpoints() []endpoint {
	var out []endpoint
	for _, p := range c.active {
		out = append(out, endpoint{p, true})
	}
	return out
}

// run makes b.N changes and reports the metrics.
func (c *churner) run(b *testing.B) {
	e := c.e
	e.waitServes(b, c.url, c.active...)
	r0 := e.reloads(b)
	d0 := c.checkFails(b)
	stop := make(chan struct{})
	ld := c.startLoad(stop)
	op := e.startOperatorLoad(stop)
	lat := make([]time.Duration, 0, b.N)
	api := make([]time.Duration, 0, b.N)   // the update call alone
	after := make([]time.Duration, 0, b.N) // from the call's return to live
	b.ResetTimer()
	for i := range b.N {
		idle := c.pool[0]
		for _, p := range c.pool {
			if !slices.Contains(c.active, p) {
				idle = p
				break
			}
		}
		c.active = append(c.active[1:len(c.active):len(c.active)], idle)
		start := time.Now()
		if err := e.putSlice(sliceFor(e.ns, "churn", c.endpoints())); err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		api = append(api, time.Since(start))
		c.waitLive(b, idle.addr)
		lat = append(lat, time.Since(start))
		after = append(after, lat[i]-api[i])
	}
	b.StopTimer()
	close(stop)
	<-ld.done
	<-op.done
	r1 := e.reloads(b)
	if r1 == r0 { // a reload resets the counters
		b.ReportMetric(float64(c.checkFails(b)-d0), "check-fails")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(ld.failed.Load()), "failed-reqs")
	b.ReportMetric(float64(ld.ok.Load()), "ok-reqs")
	b.ReportMetric(float64(r1-r0), "reloads")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	slices.Sort(api)
	b.ReportMetric(ms(api[len(api)*99/100]), "api-p99-ms")
	slices.Sort(after)
	b.ReportMetric(ms(after[len(after)*99/100]), "after-api-p99-ms")
	b.ReportMetric(float64(op.failed.Load()), "operator-failed")
	if v := ld.lastErr.Load(); v != nil {
		b.Logf("last failed request: %v", v)
	}
}

// checkFails sums the backend's failed health checks of servers that were
// up (`show stat` chkfail): checks timing out on a starved machine, not
// edged, then explain failed requests. (chkdown would also count every
// slot edged puts into maintenance.)
func (c *churner) checkFails(b *testing.B) int {
	reply, err := c.e.paths.Stats.Command(context.Background(), "show stat")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimPrefix(reply, "# "), "\n")
	col := slices.Index(strings.Split(lines[0], ","), "chkfail")
	if col < 0 {
		b.Fatalf("show stat: no chkfail column in %q", lines[0])
	}
	n := 0
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > col && f[0] == c.be && f[1] != "BACKEND" {
			v, _ := strconv.Atoi(f[col])
			n += v
		}
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// livePoll is how often waitLive looks: change-to-live is measured through
// it, so it stays the millisecond the README's figures were measured with.
const livePoll = time.Millisecond

// waitLive polls `show servers state` every livePoll until addr is up.
func (c *churner) waitLive(b *testing.B, addr netip.AddrPort) {
	if err := wait.UntilEvery(waitTimeout, livePoll, fmt.Sprintf("server %s live in %s", addr, c.be), func() (bool, string) {
		up, _ := c.e.serverUp(c.be, addr)
		return up, "not up"
	}); err != nil {
		b.Fatal(err)
	}
}

type load struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	done       chan struct{}
}

// startLoad sends requests to the VIP from the client namespace, one new
// connection each, until stop.
func (c *churner) startLoad(stop <-chan struct{}) *load {
	l := &load{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.e.get(c.url); err != nil {
				l.failed.Add(1)
				l.lastErr.Store(err.Error())
			} else {
				l.ok.Add(1)
			}
		}
	}()
	return l
}

// startBaseline drives HAProxy the way edged would without runtime slots:
// on every informer change, lbconfig.Build and a forced reload. It stops
// at the end of the benchmark run.
func (c *churner) startBaseline(b *testing.B) {
	e := c.e
	log := slog.New(slog.NewTextHandler(e.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mgr := haproxy.NewManager(haproxy.ManagerConfig{Paths: e.paths, Logger: log})
	ch, unsub := e.kp.Changes()
	ctx, cancel := context.WithCancel(context.Background())
	apply := func() error {
		allocs := map[string]lbpool.Allocation{}
		for _, a := range e.store.State().Allocations {
			allocs[a.Key] = a
		}
		model, _ := lbconfig.Build(lbconfig.Input{Services: e.kp.Services(), Slices: e.kp.EndpointSlices(),
			Nodes: e.kp.Nodes(), Allocations: allocs, CertDir: e.cfg.HAProxy.CertDir})
		mgr.Invalidate()
		return mgr.Apply(ctx, model).Err
	}
	if err := apply(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
			if err := apply(); err != nil && ctx.Err() == nil {
				log.Warn("baseline apply", "err", err)
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done; unsub() })
}
