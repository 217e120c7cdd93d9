package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/metricsrv"
	"github.com/goldentooth/edged/edge/notify"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// shutdownBudget bounds the whole graceful shutdown; it stays below the
// unit's TimeoutStopSec (30 s) so systemd never has to SIGKILL edged.
const shutdownBudget = 20 * time.Second

// Announcer announces the addresses this host holds leases for
// (edge/l2.Speaker). The Appliance owns it: Run calls Start before opening
// raft and, once Start succeeded, Close on every way out, also when Run
// fails before serving. SetLeases is called with the leased IPs (sorted;
// shared, not to be modified) and the end of their leases whenever they
// change and at least every quarter lease, so usually with the same IPs and
// a later end; SetLeases(nil, zero time) before Close withdraws every
// announcement.
type Announcer interface {
	Start() error
	SetLeases(ips []netip.Addr, until time.Time)
	Close() error
}

// Part is an optional component (the Kubernetes controller, the HAProxy
// manager) that runs until its context ends and reports readiness. A Part
// may also implement Liveness (the watchdog checks its loop, alive.go) and
// Reloadable (it takes a reloaded edged.yaml, reload.go).
type Part interface {
	Name() string
	Run(ctx context.Context, store *raft.Store) error
	Ready() bool
}

// StatusProvider adds its own lines to `edged status` (the HAProxy part);
// register it with ReportStatus.
type StatusProvider interface{ Report(*admin.Status) }

// PoolSource supplies the pool configuration the leader writes into raft
// instead of the config file's own (the Kubernetes part, merging MetalLB's
// objects); ok is false while it is not known yet (then nothing is
// written). PoolsErr is why the latest objects were refused (the last good
// pools stay in force), nil while the pools in force are the latest: it
// makes metallb_k8s_client_config_stale_bool. Register it with UsePools.
type PoolSource interface {
	Pools() (pools []lbpool.Pool, eligibility map[string][]string, ok bool)
	PoolsErr() error
}

// Appliance is one edge host's edged.
type Appliance struct {
	cfg       *config.Config
	log       *slog.Logger
	announcer Announcer
	parts     []Part
	status    []StatusProvider
	pools     PoolSource // nil: edged.yaml's pools
	registry  *prometheus.Registry

	mu    sync.Mutex
	store *raft.Store

	// Reload (reload.go) and the watchdog check (alive.go).
	live      atomic.Pointer[config.Config] // the config in force once reloaded; nil: cfg
	level     *slog.LevelVar                // nil: log.level is not applied
	reloadMu  sync.Mutex
	reloaded  chan struct{} // wakes pushPools after a reload
	reloads   reloadMetrics
	serveBeat notify.Heartbeat
	raftProbe probe
}

// New returns an Appliance for cfg; it starts nothing. announcer may be
// nil (no announcing, e.g. a host that only serves HAProxy) and is started
// and closed by Run; parts are started in order and stopped in reverse.
func New(cfg *config.Config, log *slog.Logger, announcer Announcer, parts ...Part) *Appliance {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &Appliance{cfg: cfg, log: log, announcer: announcer, parts: parts, registry: reg,
		reloaded: make(chan struct{}, 1), reloads: newReloadMetrics(reg)}
	reg.MustRegister(configCollector{a})
	return a
}

// ReportStatus adds r's lines to `edged status`. Call before Run.
func (a *Appliance) ReportStatus(r StatusProvider) { a.status = append(a.status, r) }

// UsePools makes src supply the replicated pool configuration instead of
// edged.yaml's own (see PoolSource). Call before Run.
func (a *Appliance) UsePools(src PoolSource) { a.pools = src }

// Registry is where components register their collectors.
func (a *Appliance) Registry() *prometheus.Registry { return a.registry }

// Store is the raft store Run opened, or nil before Run has opened it. It
// lets tests and tools write through this host (leader-only writes).
func (a *Appliance) Store() *raft.Store {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store
}

// Run starts everything, serves until ctx ends, then shuts down in order:
// stop taking work, hand IPs over and withdraw announcements, step down,
// close raft, stop serving status. It returns the first fatal error; what
// it started is stopped on every path.
func (a *Appliance) Run(ctx context.Context) error {
	// The announcer starts first, so the VIPs a crash left on lo are gone
	// and the interfaces are served before the first lease comes in.
	if a.announcer != nil {
		if err := a.announcer.Start(); err != nil {
			return fmt.Errorf("start announcer: %w", err)
		}
	}
	store, adm, met, err := a.open()
	if err != nil {
		a.closeAnnouncer()
		return err
	}
	for _, l := range a.cfg.Wildcards() {
		a.log.Warn("listening on every address: every VIP on lo exposes this endpoint too; set it to this host's own address",
			"field", l.Field, "address", l.Address)
	}
	go adm.Serve()
	go met.Serve()

	n := notify.New(a.log)
	runCtx, stopParts := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(a.parts)+2)
	for _, p := range a.parts {
		wg.Add(1)
		go func(p Part) {
			defer wg.Done()
			if err := p.Run(runCtx, store); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", p.Name(), err)
			}
		}(p)
	}
	wg.Add(2)
	go func() { defer wg.Done(); a.pushPools(runCtx, store) }()
	go func() { defer wg.Done(); n.Watchdog(runCtx, a.Alive) }()

	err = a.serve(runCtx, store, n, errs)

	// Ordered shutdown.
	n.Stopping()
	a.log.Info("shutting down", "err", err)
	stopParts()
	done, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	// Close hands the IPs over by dropping this host's leases before the
	// voters promise them elsewhere, so the announcer must keep following
	// the leases until Close returns; otherwise it would announce dropped
	// leases until they expire, alongside their new owners.
	closed := make(chan struct{})
	followed := make(chan struct{})
	go func() { defer close(followed); a.followLeases(store, closed) }()
	if cerr := store.Close(done); cerr != nil {
		a.log.Warn("raft close", "err", cerr)
	}
	close(closed)
	<-followed
	a.closeAnnouncer()
	wg.Wait()
	met.Shutdown(done)
	adm.Shutdown(done)
	return err
}

// open opens raft and starts listening on the admin socket and the
// metrics address; on error it closes what it had opened.
func (a *Appliance) open() (*raft.Store, *admin.Server, *metricsrv.Server, error) {
	rc := RaftConfig(a.cfg, a.log)
	rc.StartUnhealthy = a.gated()
	store, err := raft.Open(rc)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open raft: %w", err)
	}
	a.mu.Lock()
	a.store = store
	a.mu.Unlock()
	a.registry.MustRegister(stateCollector{view: store.State}, store.Collector())

	peers := map[string]string{}
	for _, p := range a.cfg.Raft.Peers {
		peers[p.ID] = p.Address
	}
	adm, err := admin.Listen(a.cfg.Node.AdminSocket, func() admin.Status {
		st := statusOf(store.State(), store.Leases(time.Now()), peers)
		st.Term, _ = strconv.ParseUint(store.Stats()["term"], 10, 64)
		for _, r := range a.status {
			r.Report(&st)
		}
		return st
	}, storeOperator{store}, a.log)
	if err != nil {
		store.Close(context.Background())
		return nil, nil, nil, err
	}
	met, err := metricsrv.Listen(a.cfg.Metrics.Address, a.cfg.Metrics.TLS.Files(), a.registry, a.Alive, a.readyErr)
	if err != nil {
		adm.Shutdown(context.Background())
		store.Close(context.Background())
		return nil, nil, nil, err
	}
	return store, adm, met, nil
}

// closeAnnouncer withdraws every announcement and closes the announcer.
func (a *Appliance) closeAnnouncer() {
	if a.announcer == nil {
		return
	}
	a.announcer.SetLeases(nil, time.Time{})
	if err := a.announcer.Close(); err != nil {
		a.log.Warn("announcer close", "err", err)
	}
}

// serve hands leases to the announcer and reports readiness until ctx ends
// or a part fails.
func (a *Appliance) serve(ctx context.Context, store *raft.Store, n *notify.Notifier, errs <-chan error) error {
	changes, unsub := store.Changes()
	defer unsub()
	tick := time.NewTicker(leaseTick(a.cfg.Raft.LeaseDuration))
	defer tick.Stop()
	ready := false
	waiting := "" // the STATUS line last sent while not ready
	for {
		a.serveBeat.Beat()
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case <-changes:
		case <-tick.C:
		}
		if a.announcer != nil {
			a.announcer.SetLeases(store.LeaseSet(time.Now()))
		}
		if ready {
			continue
		}
		if err := a.readyErr(); err != nil {
			// `systemctl status edged` says what edged waits for.
			if msg := "not ready: " + err.Error(); msg != waiting {
				waiting = msg
				n.Status(msg)
			}
			continue
		}
		ready = true
		id, _ := store.Leader()
		n.Ready(fmt.Sprintf("raft leader %s", id))
		a.log.Info("ready", "leader", id)
	}
}

// followLeases hands the store's leases to the announcer on every change
// until stop is closed.
func (a *Appliance) followLeases(store *raft.Store, stop <-chan struct{}) {
	if a.announcer == nil {
		return
	}
	changes, unsub := store.Changes()
	defer unsub()
	for {
		a.announcer.SetLeases(store.LeaseSet(time.Now()))
		select {
		case <-stop:
			return
		case <-changes:
		}
	}
}

// healthGate is a part that decides this host's health (edge/health): raft
// then opens unhealthy and the part says when the host may announce.
type healthGate interface{ GatesAnnouncements() bool }

// gated reports whether a part gates announcements on health.
func (a *Appliance) gated() bool {
	for _, p := range a.parts {
		if g, ok := p.(healthGate); ok && g.GatesAnnouncements() {
			return true
		}
	}
	return false
}

// notReadyReason is a part that can say why it is not ready (the HAProxy
// part: its last apply error, e.g. a socket it may not open).
type notReadyReason interface{ NotReadyReason() string }

// readyErr is nil once raft has a leader and every part is ready.
func (a *Appliance) readyErr() error {
	a.mu.Lock()
	store := a.store
	a.mu.Unlock()
	if store == nil {
		return errors.New("raft not open yet")
	}
	if id, _ := store.Leader(); id == "" {
		return errors.New("raft has no leader")
	}
	for _, p := range a.parts {
		if !p.Ready() {
			if r, ok := p.(notReadyReason); ok {
				if why := r.NotReadyReason(); why != "" {
					return fmt.Errorf("%s: %s", p.Name(), why)
				}
			}
			return fmt.Errorf("%s not ready", p.Name())
		}
	}
	return nil
}

// pushPools makes the replicated pool configuration follow this host's
// config in force (the last reloaded edged.yaml) whenever this host leads:
// every host has the same edged.yaml, and the leader writes it once per
// change. A registered PoolSource (the Kubernetes part with MetalLB's
// objects) supplies the pools instead; until it knows them, the state's
// Service pools stay as they are and only the static VIPs' pools follow
// the config. Once the pools are in the state, the static VIPs'
// allocations follow them (static.go).
func (a *Appliance) pushPools(ctx context.Context, store *raft.Store) {
	changes, unsub := store.StateChanges()
	defer unsub()
	src := a.pools // the Kubernetes part, when it merges MetalLB's objects
	static := &staticAllocs{log: a.log}
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		if store.IsLeader() {
			a.leadPools(ctx, store, src, static)
		} else {
			static.reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-a.reloaded:
		case <-retry.C:
		}
	}
}

// leadPools writes the pools in force into the raft state when they
// differ from it, then brings the static VIPs' allocations in line.
func (a *Appliance) leadPools(ctx context.Context, store *raft.Store, src PoolSource, static *staticAllocs) {
	cfg := a.current()
	want, elig, known := cfg.LBPools, cfg.Eligibility(), true
	if src != nil {
		want, elig, known = src.Pools()
	}
	if !known {
		have, haveElig := store.PoolConfig()
		want, elig = staticOnly(have, haveElig, cfg.StaticPools(), cfg.Eligibility())
		// The config's static addresses were checked against its own
		// pools only, not against the cluster's the state may hold.
		if err := lbpool.ValidatePools(want); err != nil {
			static.refuse(err)
			return
		}
	}
	if !samePools(store, want, elig) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := store.SetPools(wctx, want, elig)
		cancel()
		if err != nil {
			a.log.Warn("push pools", "err", err)
			return
		}
		a.log.Info("pools written to the raft state", "pools", len(want))
	}
	static.sync(ctx, store, want)
}

// samePools reports whether the raft state already holds want and elig.
func samePools(store *raft.Store, want []lbpool.Pool, elig map[string][]string) bool {
	pools, have := store.PoolConfig()
	if !lbpool.PoolsEqual(pools, want) || len(have) != len(elig) {
		return false
	}
	for k, hosts := range elig {
		if !slices.Equal(have[k], hosts) {
			return false
		}
	}
	return true
}
