// Package kube is edged's Kubernetes Service controller. Every host keeps
// informers on Services, EndpointSlices and Nodes warm (for HAProxy); only
// the raft leader allocates LoadBalancer addresses and writes Service status,
// annotations and Events, with MetalLB's semantics.
//
// It guarantees that allocation state lives only in the Store (raft): the
// API server going away loses nothing, and informers relist when it returns.
// A Service waiting for an address is retried only when an address frees or
// the pools change. PoolWatcher reads MetalLB's IPAddressPool and
// L2Advertisement objects as a pool source (kubernetes.metallbCRDs).
package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/goldentooth/edged/lbpool"
)

// Store is the allocation state the controller needs (implemented by
// *raft.Store). Writes succeed only on the leader.
type Store interface {
	Allocate(ctx context.Context, req lbpool.Request) (lbpool.Allocation, error)
	Release(ctx context.Context, key string) error
	Lookup(key string) (lbpool.Allocation, bool)
	IsLeader() bool
	// StateChanges notifies (coalesced) after every applied change of the
	// replicated state; lease renewals, 20 a second, do not wake it.
	StateChanges() (<-chan struct{}, func())
	// FreeEpoch counts the changes after which a failed allocation may
	// succeed (raft.Store.FreeEpoch); a waiting Service is retried once
	// it passes the value read before its failed attempt.
	FreeEpoch() uint64
}

// DefaultIPMode is written into status.loadBalancer.ingress[].ipMode when
// Options.IPMode is empty: VIP means kube-proxy may short-circuit traffic to
// the address inside the cluster, as with MetalLB.
const DefaultIPMode = corev1.LoadBalancerIPModeVIP

// leaderPoll is how often the controller checks for a leadership change; the
// Store notifies applied changes but not every transition.
const leaderPoll = time.Second

// Options configures a Controller.
type Options struct {
	// Class is the loadBalancerClass served; empty serves the Services
	// without a class instead (MetalLB's rule, see Handled).
	Class string
	// IPMode is edged.yaml's kubernetes.ipMode; empty means DefaultIPMode.
	// Each Service's status gets lbconfig.IPMode(svc, IPMode): Proxy makes
	// every Service Proxy, VIP only those HAProxy does not rewrite.
	IPMode corev1.LoadBalancerIPMode
	Logger *slog.Logger
}

// Controller watches Services and allocates their LoadBalancer addresses.
type Controller struct {
	client   *Client
	store    Store
	opts     Options
	log      *slog.Logger
	cache    *Cache
	queue    workqueue.TypedRateLimitingInterface[cache.ObjectName]
	recorder record.EventRecorder
	bcast    record.EventBroadcaster

	mu      sync.Mutex
	waiting map[cache.ObjectName]uint64 // Services that failed allocation -> the free epoch read before that attempt
}

// New builds a Controller reading Services from the shared cache (which
// its owner runs); Run starts it.
func New(client *Client, shared *Cache, store Store, opts Options) *Controller {
	if opts.IPMode == "" {
		opts.IPMode = DefaultIPMode
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Controller{
		client: client, cache: shared, store: store, opts: opts, log: opts.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "services"}),
		waiting: map[cache.ObjectName]uint64{},
	}
	c.bcast = newBroadcaster()
	c.recorder = c.bcast.NewRecorder(Scheme, corev1.EventSource{Component: "edged"})
	shared.OnService(c.queue.Add)
	return c
}

// enqueueAll queues every Service in the cache.
func (c *Controller) enqueueAll() {
	for _, n := range c.cache.serviceNames() {
		c.queue.Add(n)
	}
}

// Run waits for the shared cache (its owner runs it) and processes
// Services with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	c.bcast.StartRecordingToSink(c.client.EventSink())
	defer c.bcast.Shutdown()
	if !c.cache.WaitForSync(ctx) {
		return fmt.Errorf("kube: wait for caches: %w", ctx.Err())
	}
	c.log.Debug("kube caches synced")
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	c.watchStore(ctx)
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// watchStore retries waiting Services when an address freed or the pools
// changed, and requeues everything when this host becomes leader.
func (c *Controller) watchStore(ctx context.Context) {
	ch, cancel := c.store.StateChanges()
	defer cancel()
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	wasLeader := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			c.retryWaiting()
		case <-t.C:
		}
		if l := c.store.IsLeader(); l != wasLeader {
			wasLeader = l
			if l {
				c.log.Info("raft leader: reconciling all services")
				c.enqueueAll()
			}
		}
	}
}

// retryWaiting requeues the waiting Services whose failed attempt came
// before the store's free epoch moved. Store notifications alone are no
// such sign: they also fire on each failed allocation (itself a raft
// apply), and retrying on those spams the raft log while a pool is
// exhausted. Comparing with the epoch read before each
// attempt, rather than with the last look, also catches a change that
// landed between a failed attempt and its key being marked waiting.
func (c *Controller) retryWaiting() {
	c.mu.Lock()
	if len(c.waiting) == 0 {
		c.mu.Unlock()
		return
	}
	keys := due(c.waiting, c.store.FreeEpoch())
	c.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	c.log.Debug("address freed or pools changed: retrying waiting services", "services", len(keys))
	for _, k := range keys {
		c.queue.Add(k)
	}
}

// due returns (sorted) the waiting keys whose attempt predates epoch and
// marks them as seen at epoch, so each is retried once per change.
func due(waiting map[cache.ObjectName]uint64, epoch uint64) []cache.ObjectName {
	var keys []cache.ObjectName
	for k, e := range waiting {
		if e < epoch {
			keys = append(keys, k)
			waiting[k] = epoch
		}
	}
	slices.SortFunc(keys, func(a, b cache.ObjectName) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	updates.Inc()
	if err := c.sync(ctx, key); err != nil {
		updateErrors.Inc()
		c.log.Debug("sync service", "service", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// wait marks key as waiting for an address; epoch is the free epoch read
// before its failed attempt. A change that landed between that attempt and
// now (the pools written just after it failed) has already notified
// watchStore, when key was not waiting yet, and may be the last change for
// a long time: so wait checks the epoch itself and retries at once.
func (c *Controller) wait(key cache.ObjectName, epoch uint64) {
	c.mu.Lock()
	c.waiting[key] = epoch
	c.mu.Unlock()
	c.retryWaiting()
}

// unwait forgets key as waiting.
func (c *Controller) unwait(key cache.ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting, key)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
