// Package proxy is the HAProxy part of the appliance: it keeps the local
// HAProxy in step with the raft allocations and the Kubernetes cache.
// Every host renders the same model, so every host can serve every VIP and
// failover is only an ARP move. It guarantees that one Kubernetes object's
// problem never stops the others: each is reported once (an Event when it
// appears or changes) and left out, and a Service HAProxy refuses (config
// check, bind at reload) is quarantined under its own name, so readiness
// never waits on any one Service.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/edge/report"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// Cache is what the part reads from the Kubernetes informers
// every host keeps warm. Changes fires after any cached object changed.
type Cache interface {
	// Services, EndpointSlices and Nodes return the cached objects
	// themselves: read-only.
	Services() []*corev1.Service
	EndpointSlices() []*discoveryv1.EndpointSlice
	Nodes() []*corev1.Node
	// Secret returns a kubernetes.io/tls Secret (watched: a change of one
	// fires Changes).
	Secret(namespace, name string) (*corev1.Secret, bool)
	Changes() (<-chan struct{}, func())
	Synced() bool
}

// EventSink raises a Warning Event on an object: kind is lbconfig.KindService
// (key "namespace/name") or lbconfig.KindNode (key: the Node's name).
type EventSink func(kind, key, reason, message string)

// Part keeps the local HAProxy in step with the raft allocations
// and the Services' endpoints. Every host renders the same model, so every
// host can serve every VIP and failover is only an ARP move.
type Part struct {
	cfg    *config.Config
	cache  Cache
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
	reporter   *report.Deduper        // Events raised for lbconfig's problems
	parsed     map[string]parsed      // annotations per Service, for its resourceVersion
}

// parsed is one Service version's settings (annotations and the spec
// fields HAProxy enforces), parsed once.
type parsed struct {
	version string
	set     lbconfig.Settings
	err     error
}

// settings returns svc's parsed settings, parsing them only when the
// Service changed since the last render (render and writeCerts both read
// them, every render). Only Run's goroutine calls it.
func (p *Part) settings(svc *corev1.Service) (lbconfig.Settings, error) {
	key := cache.MetaObjectToName(svc).String()
	if c, ok := p.parsed[key]; ok && c.version == svc.ResourceVersion {
		return c.set, c.err
	}
	set, err := lbconfig.ParseService(svc, p.nodePort())
	p.parsed[key] = parsed{version: svc.ResourceVersion, set: set, err: err}
	return set, err
}

// nodePort reports whether nodeport is the default backend mode.
func (p *Part) nodePort() bool { return p.cfg.HAProxy.BackendMode == lbconfig.BackendNodePort }

// forgetParsed drops the parsed annotations of Services that are gone.
func (p *Part) forgetParsed(svcs []*corev1.Service) {
	if len(p.parsed) <= len(svcs) {
		return
	}
	live := make(map[string]bool, len(svcs))
	for _, svc := range svcs {
		live[cache.MetaObjectToName(svc).String()] = true
	}
	for key := range p.parsed {
		if !live[key] {
			delete(p.parsed, key)
		}
	}
}

// quarantined is a Service whose sections HAProxy refused (`haproxy -c`,
// or a listener it could not bind at reload): it is left out until its
// fingerprint (Service and TLS Secret resourceVersions) changes, or, for a
// bind failure, until the port may have been freed (until), so one broken
// Service never blocks every other change.
type quarantined struct {
	fp    string
	until time.Time // zero: until the fingerprint changes
	err   error
}

// bindRetry is how long a Service whose port another process held stays
// out before edged tries it again (a failed reload costs nothing: the old
// worker keeps serving).
const bindRetry = time.Minute

// catchUpPoll is how often Run looks whether raft caught up, until it did.
const catchUpPoll = 20 * time.Millisecond

// trimDelay is how long after the last reload the part returns freed
// memory to the OS. A render of the reference pool's 1,279 frontends
// allocates ~100 MB of short-lived garbage that the runtime would otherwise
// hand back only slowly; one forced collection of a ~15 MB heap after a
// burst costs milliseconds.
const trimDelay = 5 * time.Second

// New returns the part; events may be nil.
func New(cfg *config.Config, cache Cache, events EventSink, log *slog.Logger) *Part {
	p := &Part{cfg: cfg, cache: cache, events: events, log: log,
		retry: make(chan struct{}, 1), quarantine: map[string]quarantined{},
		parsed: map[string]parsed{}, reporter: report.New(log, "kubernetes object not fully served by HAProxy", report.Sink(events))}
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
func (p *Part) Name() string { return "haproxy" }

// Ready is true once the first model was applied.
func (p *Part) Ready() bool { return p.ready.Load() }

// NotReadyReason is the last apply's error while no model was applied yet
// (e.g. HAProxy's socket refused edged), for `systemctl status edged`.
func (p *Part) NotReadyReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready.Load() {
		return ""
	}
	return p.seen.LastError
}

func (p *Part) onResult(r haproxy.Result) {
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
	if errors.Is(r.Err, context.Canceled) {
		p.log.Debug("haproxy update interrupted by shutdown", "err", r.Err)
		return
	}
	p.log.Warn("haproxy update failed; the previous config keeps serving", "err", r.Err)
	if len(r.Refused) > 0 {
		p.quarantineRefused(r)
	}
}

// quarantineRefused leaves the owners HAProxy refused out of the next
// render and asks Run for it; the Event each gets says only what HAProxy
// said about that Service's own sections.
func (p *Part) quarantineRefused(r haproxy.Result) {
	bind := !errors.Is(r.Err, haproxy.ErrValidate)
	var keys []string
	p.qmu.Lock()
	for key, why := range r.Refused {
		fp, known := p.fps[key]
		if _, dup := p.quarantine[key]; !known || dup {
			continue
		}
		q := quarantined{fp: fp, err: fmt.Errorf("HAProxy refused it, left out until the Service or its Secret changes: %s: %w", why, haproxy.ErrValidate)}
		if bind {
			q.until = time.Now().Add(bindRetry)
			q.err = fmt.Errorf("%s; left out, tried again in %v: %w", why, bindRetry, haproxy.ErrReload)
			time.AfterFunc(bindRetry, p.wake)
		}
		p.quarantine[key] = q
		keys = append(keys, key)
	}
	p.qmu.Unlock()
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	p.log.Warn("services left out of HAProxy after it refused them", "services", keys, "err", r.Err)
	p.wake()
}

// wake asks Run to render again.
func (p *Part) wake() {
	select {
	case p.retry <- struct{}{}:
	default:
	}
}

// Report implements edge.StatusProvider: the HAProxy lines of `edged status`.
func (p *Part) Report(st *admin.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st.HAProxy = p.seen
}

// Run renders a model whenever allocations or cached objects change.
func (p *Part) Run(ctx context.Context, store *raft.Store) error {
	go p.mgr.Run(ctx)
	kch, kunsub := p.cache.Changes()
	defer kunsub()
	rch, runsub := store.StateChanges() // allocations only, not lease renewals
	defer runsub()
	var lastAllocs map[string]lbpool.Allocation
	dirty, stateMoved := true, true
	// Until raft has caught up (a restarted host starts from its last
	// snapshot) a render would drop Services created since: poll for it.
	catchUp := time.NewTicker(catchUpPoll)
	defer catchUp.Stop()
	for {
		if p.cache.Synced() && store.CaughtUp() && (dirty || stateMoved) {
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
		case <-catchUp.C:
			if store.CaughtUp() {
				catchUp.Stop()
			}
		}
	}
}

func (p *Part) render(allocs map[string]lbpool.Allocation) {
	h := p.cfg.HAProxy
	in := lbconfig.Input{
		Services:    p.cache.Services(),
		Slices:      p.cache.EndpointSlices(),
		Nodes:       p.cache.Nodes(),
		Allocations: allocs,
		NodePort:    p.nodePort(),
		CertDir:     h.CertDir,
		Slots:       h.ServerSlots,
		Stats:       p.stats(),
		Timeouts:    h.Timeouts.Timeouts(),
		Settings:    p.settings,
	}
	p.forgetParsed(in.Services)
	fps := map[string]string{}
	in.Exclude = p.writeCerts(in.Services, fps)
	p.qmu.Lock()
	p.fps = fps
	now := time.Now()
	for key, q := range p.quarantine {
		if fps[key] != q.fp || (!q.until.IsZero() && now.After(q.until)) {
			delete(p.quarantine, key) // changed, gone or due: try it again
			continue
		}
		in.Exclude[key] = q.err
	}
	p.qmu.Unlock()
	model, problems := lbconfig.Build(in)
	p.reportProblems(problems)
	p.removeStaleCerts(model)
	p.mu.Lock()
	p.seen.Frontends, p.seen.Backends = len(model.Frontends), len(model.Backends)
	p.mu.Unlock()
	p.mgr.Update(model)
}

// stats is the stats page and exporter of the config (checked by config
// validation: an address that does not parse is off).
func (p *Part) stats() *haproxy.Stats {
	h := p.cfg.HAProxy
	if h.Stats.Bind == "" && h.Prometheus.Bind == "" {
		return nil
	}
	page, _ := netip.ParseAddrPort(h.Stats.Bind)
	exporter, _ := netip.ParseAddrPort(h.Prometheus.Bind)
	s := h.Stats
	return &haproxy.Stats{Bind: page, URI: s.URI, User: s.User, Password: s.Password, Refresh: s.Refresh, Prometheus: exporter}
}

func allocationsOf(v raft.View) map[string]lbpool.Allocation {
	out := make(map[string]lbpool.Allocation, len(v.Allocations))
	for _, a := range v.Allocations {
		out[a.Key] = a
	}
	return out
}

// sameAllocs reports whether a and b give every Service the same IPs and
// ports (the only allocation facts a render reads).
func sameAllocs(a, b map[string]lbpool.Allocation) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v.IPs, w.IPs) || !slices.Equal(v.Ports, w.Ports) {
			return false
		}
	}
	return true
}
