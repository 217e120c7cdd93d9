package nft

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/edge/report"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// Cache is what the part reads from the Kubernetes informers every host
// keeps warm (kube.Part). Changes fires after any cached object changed.
type Cache interface {
	// Services, EndpointSlices and Nodes return the cached objects
	// themselves: read-only.
	Services() []*corev1.Service
	EndpointSlices() []*discoveryv1.EndpointSlice
	Nodes() []*corev1.Node
	Changes() (<-chan struct{}, func())
	Synced() bool
}

// EventSink raises a Warning Event on an object: kind is KindService (key
// "namespace/name") or KindNode (key: the Node's name). kube.Part.Event is
// one.
type EventSink func(kind, key, reason, message string)

// Store is what the part reads of raft (*raft.Store): allocations, this
// host's leases and their changes.
type Store interface {
	Lookup(key string) (lbpool.Allocation, bool)
	LeaseSet(now time.Time) ([]netip.Addr, time.Time)
	// Changes fires after every applied change and lease renewal or
	// change; StateChanges only after applied changes.
	Changes() (<-chan struct{}, func())
	StateChanges() (<-chan struct{}, func())
}

// retryAfter is how long after a failed apply the part tries again: the
// next lease renewal (a quarter lease) usually comes sooner.
const retryAfter = time.Second

// drainLimit bounds how long the part keeps forwarding after its context
// ended while this host still holds leases: the appliance closes raft,
// which hands the IPs over and drops every lease, within its 20 s
// shutdown budget; the rest is margin.
const drainLimit = 30 * time.Second

// Part forwards the UDP and SCTP ports of the Services whose VIPs this
// host holds leases for (see the package doc). It implements edge.Part.
type Part struct {
	cache    Cache
	events   EventSink
	log      *slog.Logger
	table    *Table
	nodePort bool
	ready    atomic.Bool

	// Only Run's goroutine uses these.
	desired  []Forward
	reporter *report.Deduper
	failed   bool // the last apply failed: apply again
}

// New returns the part forwarding through table (Open() on an edge host);
// events may be nil. It touches nothing until Run.
func New(cfg *config.Config, cache Cache, events EventSink, table *Table, log *slog.Logger) *Part {
	return &Part{cache: cache, events: events, log: log, table: table,
		nodePort: cfg.HAProxy.BackendMode == lbconfig.BackendNodePort,
		reporter: report.New(log, "kubernetes object not fully forwarded", report.Sink(events))}
}

// Name implements edge.Part.
func (p *Part) Name() string { return "forward" }

// Ready is true once the cache synced and the first apply was tried. A
// failing apply does not hold readiness (HAProxy still serves every TCP
// port); it is logged, counted (edged_forward_applies_total) and retried.
func (p *Part) Ready() bool { return p.ready.Load() }

// Run implements edge.Part: it deletes leftovers of an earlier run, then
// keeps the tables in step until ctx ends; then it keeps following the
// leases until raft's close has dropped them (bounded by drainLimit), so
// forwarding moves with the announcement, and deletes the tables.
func (p *Part) Run(ctx context.Context, store *raft.Store) error { return p.run(ctx, store) }

func (p *Part) run(ctx context.Context, store Store) error {
	if err := p.table.Start(); err != nil {
		p.log.Error("cannot clear edged's nftables tables; UDP/SCTP ports are not forwarded until it works", "err", err)
		p.failed = true
	}
	kch, kunsub := p.cache.Changes()
	defer kunsub()
	lch, lunsub := store.Changes()
	defer lunsub()
	sch, sunsub := store.StateChanges()
	defer sunsub()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	dirty, first := true, true
	for {
		if p.cache.Synced() {
			if dirty {
				p.rebuild(store)
				dirty = false
			}
			until := p.follow(store, first)
			first = false
			p.ready.Store(true)
			resetTimer(expiry, until, p.failed)
		}
		select {
		case <-ctx.Done():
			p.drain(store, lch)
			return nil
		case <-kch:
			dirty = true
		case <-sch:
			dirty = true
		case <-lch:
		case <-expiry.C:
		}
	}
}

// rebuild recomputes the desired Forwards and reports new problems.
func (p *Part) rebuild(store Store) {
	fs, problems := Build(Input{Services: p.cache.Services(), Slices: p.cache.EndpointSlices(),
		Nodes: p.cache.Nodes(), Lookup: store.Lookup, NodePort: p.nodePort})
	p.desired = fs
	p.report(problems)
}

// follow applies the desired Forwards of the VIPs leased now, if that
// differs from what is applied, and returns when the leases end.
func (p *Part) follow(store Store, force bool) time.Time {
	leased, until := store.LeaseSet(time.Now())
	want := Held(p.desired, leased)
	if force || p.failed || !sameForwards(want, p.table.Applied()) {
		p.apply(want)
	}
	return until
}

func (p *Part) apply(want []Forward) {
	err := p.table.Apply(want)
	switch {
	case errors.Is(err, ErrApply):
		countApply(resultError)
		p.failed = true
		p.log.Error("nftables apply failed; the previous rules keep forwarding", "forwards", len(want), "err", err)
		return
	case err != nil:
		countApply(resultConntrack)
		p.log.Warn("UDP/SCTP forwarding applied, but stale flows were not cleared", "err", err)
	default:
		countApply(resultOK)
	}
	p.failed = false
	setForwarded(want)
	p.log.Debug("UDP/SCTP forwarding applied", "forwards", len(want))
}

// drain keeps following the leases after the context ended, until none
// of the forwarded VIPs is held or drainLimit passed, then deletes the
// tables.
func (p *Part) drain(store Store, lch <-chan struct{}) {
	limit := time.NewTimer(drainLimit)
	defer limit.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for len(p.table.Applied()) > 0 {
		until := p.follow(store, false)
		resetTimer(expiry, until, p.failed)
		if len(p.table.Applied()) == 0 {
			break
		}
		select {
		case <-limit.C:
			p.log.Warn("stopping UDP/SCTP forwarding while leases are still held", "limit", drainLimit)
			p.closeTable()
			return
		case <-lch:
		case <-expiry.C:
		}
	}
	p.closeTable()
}

func (p *Part) closeTable() {
	if err := p.table.Close(); err != nil {
		p.log.Warn("delete edged's nftables tables", "err", err)
	}
	setForwarded(nil)
}

// resetTimer arms t for until (the end of the leases: applying then
// withdraws every Forward even if no renewal or change comes), or for
// retryAfter after a failure, whichever is sooner.
func resetTimer(t *time.Timer, until time.Time, failed bool) {
	d := time.Hour
	if !until.IsZero() {
		d = max(time.Until(until), time.Millisecond)
	}
	if failed {
		d = min(d, retryAfter)
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}
