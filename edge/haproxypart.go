package edge

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/raft"
)

// KubeCache is what the HAProxy part reads from the Kubernetes informers
// every host keeps warm. Changes fires after any cached object changed.
type KubeCache interface {
	Services() []corev1.Service
	EndpointSlices() []discoveryv1.EndpointSlice
	Nodes() []corev1.Node
	Secret(namespace, name string) (*corev1.Secret, bool)
	Changes() (<-chan struct{}, func())
	Synced() bool
}

// EventSink raises a Warning Event on a Service ("namespace/name").
type EventSink func(key, reason, message string)

// HAProxyPart keeps the local HAProxy in step with the raft allocations
// and the Services' endpoints. Every host renders the same model, so every
// host can serve every VIP and failover is only an ARP move.
type HAProxyPart struct {
	cfg    *config.Config
	cache  KubeCache
	events EventSink
	log    *slog.Logger
	mgr    *haproxy.Manager
	ready  atomic.Bool

	mu   sync.Mutex
	seen admin.HAProxy // what `edged status` shows
}

// NewHAProxyPart returns the part; events may be nil.
func NewHAProxyPart(cfg *config.Config, cache KubeCache, events EventSink, log *slog.Logger) *HAProxyPart {
	p := &HAProxyPart{cfg: cfg, cache: cache, events: events, log: log}
	h := cfg.HAProxy
	p.mgr = haproxy.NewManager(haproxy.ManagerConfig{
		Paths: haproxy.Paths{
			Binary:          h.Binary,
			OperatorConfigs: []string{h.OperatorFile},
			Config:          h.ConfigFile,
			Master:          haproxy.Socket{Network: "unix", Address: h.MasterSocket, Master: true},
			Stats:           haproxy.Socket{Network: "unix", Address: h.StatsSocket},
		},
		Window:   h.Coalesce,
		OnResult: p.onResult,
		Logger:   log,
	})
	return p
}

// Name implements Part.
func (p *HAProxyPart) Name() string { return "haproxy" }

// Ready is true once the first model was applied.
func (p *HAProxyPart) Ready() bool { return p.ready.Load() }

func (p *HAProxyPart) onResult(r haproxy.Result) {
	p.mu.Lock()
	if r.Reloaded {
		p.seen.Reloads++
		p.seen.LastReload = time.Now()
	}
	p.seen.LastError = ""
	if r.Err != nil {
		p.seen.LastError = r.Err.Error()
	}
	p.mu.Unlock()
	if r.Err == nil {
		p.ready.Store(true)
		return
	}
	p.log.Warn("haproxy update failed; the previous config keeps serving", "err", r.Err)
}

func (p *HAProxyPart) report(st *admin.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st.HAProxy = p.seen
}

// Run renders a model whenever allocations or cached objects change.
func (p *HAProxyPart) Run(ctx context.Context, store *raft.Store) error {
	go p.mgr.Run(ctx)
	kch, kunsub := p.cache.Changes()
	defer kunsub()
	rch, runsub := store.Changes()
	defer runsub()
	var lastAllocs map[string][]netip.Addr
	dirty := true
	for {
		if p.cache.Synced() {
			allocs := allocationsOf(store.State())
			if dirty || !sameAllocs(allocs, lastAllocs) {
				p.render(allocs)
				lastAllocs, dirty = allocs, false
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kch:
			dirty = true
		case <-rch:
		}
	}
}

func (p *HAProxyPart) render(allocs map[string][]netip.Addr) {
	h := p.cfg.HAProxy
	in := lbconfig.Input{
		Services:    p.cache.Services(),
		Slices:      p.cache.EndpointSlices(),
		Nodes:       p.cache.Nodes(),
		Allocations: allocs,
		NodePort:    h.BackendMode == "nodePort",
		CertDir:     h.CertDir,
		Stats:       p.stats(),
	}
	p.writeCerts(in.Services)
	model, errs := lbconfig.Build(in)
	for _, e := range errs {
		p.log.Warn("service left out of HAProxy", "service", e.Key, "err", e.Err)
		if p.events != nil {
			p.events(e.Key, "InvalidAnnotation", e.Err.Error())
		}
	}
	p.mu.Lock()
	p.seen.Frontends, p.seen.Backends = len(model.Frontends), len(model.Backends)
	p.mu.Unlock()
	p.mgr.Update(model)
}

// writeCerts refreshes the PEM files of TLS Secrets the Services name; a
// changed certificate forces a reload so HAProxy reads it.
func (p *HAProxyPart) writeCerts(svcs []corev1.Service) {
	for _, svc := range svcs {
		set, err := lbconfig.ParseAnnotations(svc.Annotations, false)
		if err != nil || set.TLSSecret == "" {
			continue
		}
		sec, ok := p.cache.Secret(svc.Namespace, set.TLSSecret)
		if !ok {
			p.log.Warn("TLS secret not found", "service", svc.Namespace+"/"+svc.Name, "secret", set.TLSSecret)
			continue
		}
		_, changed, err := lbconfig.WriteTLSSecret(p.cfg.HAProxy.CertDir, *sec)
		if err != nil {
			p.log.Warn("write TLS secret", "service", svc.Namespace+"/"+svc.Name, "err", err)
			continue
		}
		if changed {
			p.mgr.Invalidate()
		}
	}
}

func (p *HAProxyPart) stats() *haproxy.Stats {
	s := p.cfg.HAProxy.Stats
	if s.Bind == "" {
		return nil
	}
	bind, err := netip.ParseAddrPort(s.Bind)
	if err != nil {
		p.log.Warn("haproxy.stats.bind is not ip:port; stats page off", "bind", s.Bind)
		return nil
	}
	return &haproxy.Stats{Bind: bind, URI: s.URI, User: s.User, Password: s.Password, Refresh: s.Refresh,
		Prometheus: p.cfg.HAProxy.Prometheus.Bind != ""}
}

func allocationsOf(v raft.View) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(v.Allocations))
	for _, a := range v.Allocations {
		out[a.Key] = a.IPs
	}
	return out
}

func sameAllocs(a, b map[string][]netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
