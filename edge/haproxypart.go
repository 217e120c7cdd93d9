package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
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
	// Secret returns a kubernetes.io/tls Secret (watched: a change of one
	// fires Changes).
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

	trim       *time.Timer            // returns memory to the OS once reloads quiet down
	retry      chan struct{}          // onResult asks Run to render again
	qmu        sync.Mutex             // guards quarantine and fps
	quarantine map[string]quarantined // Services HAProxy refused, by key
	fps        map[string]string      // Service fingerprints of the last render
}

// quarantined is a Service whose render `haproxy -c` refused: it is left
// out until its fingerprint (Service and TLS Secret resourceVersions)
// changes, so one broken Service never blocks every other change.
type quarantined struct {
	fp  string
	err error
}

// trimDelay is how long after the last reload the part returns freed
// memory to the OS. A render of the reference pool's 1,279 frontends
// allocates ~100 MB of short-lived garbage that the runtime would otherwise
// hand back only slowly; one forced collection of a ~15 MB heap after a
// burst costs milliseconds.
const trimDelay = 5 * time.Second

// Event reasons the part raises on Services.
const (
	ReasonInvalidAnnotation    = "InvalidAnnotation"
	ReasonInvalidTLSSecret     = "InvalidTLSSecret"
	ReasonHAProxyConfigInvalid = "HAProxyConfigInvalid"
)

// NewHAProxyPart returns the part; events may be nil.
func NewHAProxyPart(cfg *config.Config, cache KubeCache, events EventSink, log *slog.Logger) *HAProxyPart {
	p := &HAProxyPart{cfg: cfg, cache: cache, events: events, log: log,
		retry: make(chan struct{}, 1), quarantine: map[string]quarantined{}}
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
		if p.trim == nil {
			p.trim = time.AfterFunc(trimDelay, debug.FreeOSMemory)
		} else {
			p.trim.Reset(trimDelay)
		}
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
	var ve *haproxy.ValidateError
	if !errors.As(r.Err, &ve) {
		return
	}
	var keys []string
	p.qmu.Lock()
	for _, sec := range ve.Sections {
		key, ok := lbconfig.ServiceKey(sec)
		fp, known := p.fps[key]
		if _, dup := p.quarantine[key]; !ok || !known || dup {
			continue
		}
		p.quarantine[key] = quarantined{fp: fp, err: fmt.Errorf("HAProxy refused its config, left out until the Service or its Secret changes: %w", ve)}
		keys = append(keys, key)
	}
	p.qmu.Unlock()
	if len(keys) == 0 {
		return
	}
	p.log.Warn("services left out of HAProxy after a failed validation", "services", keys)
	select {
	case p.retry <- struct{}{}:
	default:
	}
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
	rch, runsub := store.StateChanges() // allocations only, not lease renewals
	defer runsub()
	var lastAllocs map[string][]netip.Addr
	dirty, stateMoved := true, true
	for {
		if p.cache.Synced() && (dirty || stateMoved) {
			allocs := allocationsOf(store.State())
			if dirty || !sameAllocs(allocs, lastAllocs) {
				p.render(allocs)
				lastAllocs, dirty = allocs, false
			}
			stateMoved = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kch:
			dirty = true
		case <-rch:
			stateMoved = true
		case <-p.retry:
			dirty = true
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
		Slots:       h.ServerSlots,
		Stats:       p.stats(),
	}
	fps := map[string]string{}
	in.Exclude = p.writeCerts(in.Services, fps)
	p.qmu.Lock()
	p.fps = fps
	for key, q := range p.quarantine {
		if fps[key] != q.fp {
			delete(p.quarantine, key) // changed or gone: try it again
			continue
		}
		in.Exclude[key] = q.err
	}
	p.qmu.Unlock()
	model, errs := lbconfig.Build(in)
	for _, e := range errs {
		p.log.Warn("service left out of HAProxy", "service", e.Key, "err", e.Err)
		p.event(e.Key, reasonFor(e.Err), e.Err.Error())
	}
	p.mu.Lock()
	p.seen.Frontends, p.seen.Backends = len(model.Frontends), len(model.Backends)
	p.mu.Unlock()
	p.mgr.Update(model)
}

func (p *HAProxyPart) event(key, reason, msg string) {
	if p.events != nil {
		p.events(key, reason, msg)
	}
}

func reasonFor(err error) string {
	switch {
	case errors.Is(err, haproxy.ErrValidate):
		return ReasonHAProxyConfigInvalid
	case errors.Is(err, lbconfig.ErrSecret):
		return ReasonInvalidTLSSecret
	}
	return ReasonInvalidAnnotation
}

// writeCerts refreshes the PEM files of TLS Secrets the Services name; a
// changed certificate that HAProxy has loaded forces a reload. It fills fps
// with every Service's fingerprint and returns the Services to leave out:
// those whose Secret is missing or unusable and that have no earlier good
// PEM (with one, the old certificate keeps serving and an Event is raised).
func (p *HAProxyPart) writeCerts(svcs []corev1.Service, fps map[string]string) map[string]error {
	exclude := map[string]error{}
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		fps[key] = svc.ResourceVersion
		set, err := lbconfig.ParseAnnotations(svc.Annotations, false)
		if err != nil || set.TLSSecret == "" {
			continue
		}
		sec, ok := p.cache.Secret(svc.Namespace, set.TLSSecret)
		if !ok {
			err = fmt.Errorf("secret %s/%s not found among the Secrets of type %s: %w",
				svc.Namespace, set.TLSSecret, corev1.SecretTypeTLS, lbconfig.ErrSecret)
		} else {
			fps[key] += "/" + sec.ResourceVersion
			var path string
			var changed bool
			if path, changed, err = lbconfig.WriteTLSSecret(p.cfg.HAProxy.CertDir, *sec); changed {
				p.mgr.InvalidateCert(path)
			}
		}
		if err == nil {
			continue
		}
		p.log.Warn("TLS secret unusable", "service", key, "err", err)
		if _, serr := os.Stat(lbconfig.CertPath(p.cfg.HAProxy.CertDir, svc.Namespace, set.TLSSecret)); serr == nil {
			p.event(key, ReasonInvalidTLSSecret, err.Error()+"; the previous certificate keeps serving")
			continue
		}
		exclude[key] = err
	}
	return exclude
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
