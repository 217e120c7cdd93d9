package kube

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// AnnounceState is what Announcers reads of the raft state (*raft.Store).
type AnnounceState interface {
	State() raft.View
	IsLeader() bool
	// StateChanges fires after every applied change (an IP moved to
	// another host is one), not on lease renewals.
	StateChanges() (<-chan struct{}, func())
}

// AnnouncersOptions configures Announcers.
type AnnouncersOptions struct {
	// Namespace holds the ServiceL2Status objects (kubernetes.metallbNamespace,
	// where MetalLB's speakers write theirs).
	Namespace string
	Resync    time.Duration
	// PoolConfig returns the pools and advertisements in force: the
	// interfaces a ServiceL2Status names. nil: none named.
	PoolConfig func() *config.Config
	// PoolObjects lists MetalLB's IPAddressPool objects whose status
	// Announcers writes; nil when the pools come from edged.yaml.
	PoolObjects func() []*unstructured.Unstructured
	Logger      *slog.Logger
}

// Timings of Announcers.
const (
	// discoverEvery is how often a host whose apiserver serves no
	// ServiceL2Status (or no IPAddressPool status) asks again: MetalLB's
	// CRDs may be installed after edged starts. One discovery GET.
	discoverEvery = 30 * time.Second
	// poolStatusEvery bounds IPAddressPool status writes to one per pool
	// per second: 1,279 Services allocated at once change the counts 1,279
	// times.
	poolStatusEvery = time.Second
	// announceWorkers is how many Services are written at once; the
	// client's QPS limit (kubernetes.qps) bounds the rate.
	announceWorkers = 2
)

// Announcers writes into Kubernetes which edge host announces each
// Service's IPs: the announcing-node annotation (lbconfig.AnnAnnouncingNode)
// and a Normal Event nodeAssigned on the Service, MetalLB's ServiceL2Status
// objects when the apiserver serves them, and the status of MetalLB's
// IPAddressPool objects when pools come from them.
//
// It guarantees that only the raft leader writes, from the replicated
// state (which host the state assigns each IP to), so a crashed announcer
// is corrected by whoever leads and two hosts never fight over an object;
// that every write compares with what the cache shows first (a resync or
// a repeated notification writes nothing); that the Event is written once
// per change of announcer, after the annotation that records it, so a new
// leader does not repeat it; and that it only touches ServiceL2Status
// objects labelled app.kubernetes.io/managed-by=edged. Failures are
// retried with the work queue's back-off and never reach serving.
type Announcers struct {
	client   *Client
	dyn      dynamic.Interface
	cache    *Cache
	state    AnnounceState
	recorder record.EventRecorder
	opts     AnnouncersOptions
	log      *slog.Logger
	queue    workqueue.TypedRateLimitingInterface[cache.ObjectName]

	l2         atomic.Pointer[l2Cache] // nil until the apiserver serves ServiceL2Status
	poolStatus atomic.Bool             // the apiserver serves ipaddresspools/status

	mu      sync.Mutex
	cur     map[string]announced // the leader's last look at the state
	stats   []lbpool.PoolStats   // with cur
	pending map[string]annotated // annotations written, maybe not yet cached
	errs    map[string]string    // last error logged per kind of write
}

// annotated is an annotation value written, giving the Service
// resourceVersion After: until the cache has caught up with After, the
// value written stands for the cached one (the controller's own writes to
// the same Service arrive in between, and must not make the annotation,
// and its Event, be written twice).
type annotated struct{ After, Value string }

// NewAnnouncers builds the writer; dyn may be nil (no MetalLB objects are
// then written). Events go through recorder (the Service controller's).
func NewAnnouncers(client *Client, dyn dynamic.Interface, shared *Cache, state AnnounceState, recorder record.EventRecorder, opts AnnouncersOptions) *Announcers {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Announcers{
		client: client, dyn: dyn, cache: shared, state: state, recorder: recorder, opts: opts, log: opts.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "announcers"}),
		pending: map[string]annotated{}, errs: map[string]string{},
	}
	shared.OnService(func(n cache.ObjectName) {
		if state.IsLeader() {
			a.queue.Add(n)
		}
	})
	return a
}

// Run writes until ctx ends.
func (a *Announcers) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer a.queue.ShutDown()
	if !a.cache.WaitForSync(ctx) {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if a.dyn != nil {
		wg.Go(func() { a.discover(ctx) })
	}
	for range announceWorkers {
		wg.Go(func() {
			for a.processNext(ctx) {
			}
		})
	}
	a.watchState(ctx)
	a.queue.ShutDown()
}

// watchState follows the raft state on the leader: Services whose
// announcing changed are queued, all of them when this host becomes
// leader; pool status is written at most every poolStatusEvery.
func (a *Announcers) watchState(ctx context.Context) {
	ch, cancel := a.state.StateChanges()
	defer cancel()
	t := time.NewTicker(poolStatusEvery) // also the leader poll, as the controller's
	defer t.Stop()
	wasLeader, dirty := false, true
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-ch:
			dirty = true
		case <-t.C:
			tick = true
		}
		if !a.state.IsLeader() {
			wasLeader = false
			continue
		}
		if dirty || !wasLeader {
			v := a.state.State()
			cur := announcements(v)
			a.mu.Lock()
			old := a.cur
			a.cur, a.stats = cur, v.Stats
			a.mu.Unlock()
			if !wasLeader {
				a.log.Debug("raft leader: writing every Service's announcer")
				a.enqueueAll(cur)
			} else {
				for _, k := range changedKeys(old, cur) {
					a.queue.Add(objectName(k))
				}
			}
			wasLeader, dirty = true, false
		}
		if tick {
			a.writePools(ctx)
		}
	}
}

// enqueueAll queues every Service the state or the caches know.
func (a *Announcers) enqueueAll(cur map[string]announced) {
	for k := range cur {
		a.queue.Add(objectName(k))
	}
	for _, n := range a.cache.serviceNames() {
		a.queue.Add(n)
	}
	if l2 := a.l2.Load(); l2 != nil {
		for _, k := range l2.inf.GetIndexer().ListIndexFuncValues(l2ServiceIndex) {
			a.queue.Add(objectName(k))
		}
	}
}

// objectName splits a "namespace/name" key; anything else (a label no
// Service could have) still names the bucket its objects are indexed by.
func objectName(key string) cache.ObjectName {
	n, err := cache.ParseObjectName(key)
	if err != nil {
		return cache.ObjectName{Name: key}
	}
	return n
}

func (a *Announcers) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		a.logErr("service", err, "service", key.String())
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// logErr logs err at Warn the first time kind fails with it, at Debug
// when it repeats (a missing RBAC rule would otherwise log per Service).
func (a *Announcers) logErr(kind string, err error, args ...any) {
	a.mu.Lock()
	repeat := a.errs[kind] == err.Error()
	a.errs[kind] = err.Error()
	a.mu.Unlock()
	args = append(args, "err", err)
	if repeat {
		a.log.Debug("writing announcers to Kubernetes", args...)
		return
	}
	a.log.Warn("writing announcers to Kubernetes failed; retrying", args...)
}

// discover checks every discoverEvery whether the apiserver serves
// ServiceL2Status and IPAddressPool status, and starts the ServiceL2Status
// cache when it appears; it ends once both are served.
func (a *Announcers) discover(ctx context.Context) {
	t := time.NewTicker(discoverEvery)
	defer t.Stop()
	var l2Done sync.WaitGroup
	defer l2Done.Wait()
	for {
		res, err := a.client.discoverMetalLB(ctx)
		if err != nil {
			a.logErr("discovery", err)
		}
		if res[resPoolStatus] {
			a.poolStatus.Store(true)
		}
		if res[resL2Status] && a.l2.Load() == nil {
			l2 := newL2Cache(a.dyn, a.opts.Namespace, a.opts.Resync, a.onL2)
			l2Done.Go(func() { l2.inf.RunWithContext(ctx) })
			if cache.WaitForCacheSync(ctx.Done(), l2.inf.HasSynced) {
				a.l2.Store(l2)
				a.log.Info("writing ServiceL2Status objects", "namespace", a.opts.Namespace)
				if a.state.IsLeader() {
					a.mu.Lock()
					cur := a.cur
					a.mu.Unlock()
					a.enqueueAll(cur)
				}
			}
		}
		if a.l2.Load() != nil && a.poolStatus.Load() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onL2 queues the Service a changed ServiceL2Status names, on the leader.
func (a *Announcers) onL2(key string) {
	if a.state.IsLeader() {
		a.queue.Add(objectName(key))
	}
}
