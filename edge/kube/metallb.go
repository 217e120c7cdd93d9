package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/lbpool"
)

// MetalLB's resources edged reads when kubernetes.metallbCRDs is on.
var (
	IPAddressPools   = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}
	L2Advertisements = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "l2advertisements"}
)

// unsyncedWarn is how often a PoolWatcher whose caches have not synced says
// so; the usual cause is that MetalLB's CRDs are not installed.
const unsyncedWarn = 30 * time.Second

// PoolWatcherOptions configures a PoolWatcher.
type PoolWatcherOptions struct {
	// Namespace holds the MetalLB objects (kubernetes.metallbNamespace).
	Namespace string
	Resync    time.Duration
	// IsLeader gates Events: every host watches, only the leader reports.
	IsLeader func() bool
	Logger   *slog.Logger
}

// PoolWatcher watches MetalLB's IPAddressPool and L2Advertisement objects in
// one namespace and keeps the file's configuration merged with them
// (config.WithObjects: the same conversion and validation as
// metallbManifests files). An invalid set of objects is reported (log, and
// a Warning Event on the object on the leader) and the last good merge stays
// in force: a bad object never drops a pool.
type PoolWatcher struct {
	base     *config.Config // the file's; guarded by mu (SetBase)
	opts     PoolWatcherOptions
	log      *slog.Logger
	pools    cache.SharedIndexInformer
	adverts  cache.SharedIndexInformer
	bcast    record.EventBroadcaster
	recorder record.EventRecorder
	events   *Client
	kick     chan struct{}

	mu        sync.Mutex
	cur       *config.Config // last good merge; nil until the first
	lastErr   string         // last error logged
	lastEvent string         // last error reported as an Event
}

// NewPoolWatcher builds a PoolWatcher over base (edged.yaml); Run starts it.
// events is the client Events are written through.
func NewPoolWatcher(dyn dynamic.Interface, events *Client, base *config.Config, opts PoolWatcherOptions) *PoolWatcher {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IsLeader == nil {
		opts.IsLeader = func() bool { return true }
	}
	w := &PoolWatcher{
		base: base, opts: opts, log: opts.Logger, events: events, kick: make(chan struct{}, 1),
		pools:   dynamicInformer(dyn, IPAddressPools, opts.Namespace, opts.Resync, ""),
		adverts: dynamicInformer(dyn, L2Advertisements, opts.Namespace, opts.Resync, ""),
	}
	w.bcast = newBroadcaster()
	w.recorder = w.bcast.NewRecorder(Scheme, corev1.EventSource{Component: "edged"})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	_, _ = w.pools.AddEventHandler(h)
	_, _ = w.adverts.AddEventHandler(h)
	return w
}

// dynamicInformer watches resource in namespace as unstructured objects,
// those matching the label selector (empty: all).
func dynamicInformer(dyn dynamic.Interface, resource schema.GroupVersionResource, namespace string, resync time.Duration, selector string) cache.SharedIndexInformer {
	r := dyn.Resource(resource).Namespace(namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return r.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return r.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, resync, cache.Indexers{})
}

func (w *PoolWatcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// SetBase makes base the file's configuration the cluster's objects are
// merged into, and merges again.
func (w *PoolWatcher) SetBase(base *config.Config) {
	w.mu.Lock()
	w.base = base
	w.mu.Unlock()
	w.poke()
}

// Config returns the last good merge of edged.yaml with the cluster's
// objects; ok is false until the objects have been read once.
func (w *PoolWatcher) Config() (cfg *config.Config, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.cur != nil
}

// PoolObjects lists the cached IPAddressPool objects (shared with the
// cache: read them, never change them).
func (w *PoolWatcher) PoolObjects() []*unstructured.Unstructured { return listUnstructured(w.pools) }

// listUnstructured lists an informer's cached objects (shared with the
// cache: read them, never change them).
func listUnstructured(inf cache.SharedIndexInformer) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, it := range inf.GetStore().List() {
		if u, ok := it.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

// Err is why the latest set of objects was refused, nil when the last
// merge is the latest (or nothing was merged yet).
func (w *PoolWatcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == "" {
		return nil
	}
	return errors.New(w.lastErr)
}

// Run watches until ctx ends.
func (w *PoolWatcher) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	w.bcast.StartRecordingToSink(w.events.EventSink())
	defer w.bcast.Shutdown()
	var informers sync.WaitGroup
	defer informers.Wait()
	informers.Go(func() { w.pools.RunWithContext(ctx) })
	informers.Go(func() { w.adverts.RunWithContext(ctx) })
	for synced := false; !synced; {
		sctx, cancel := context.WithTimeout(ctx, unsyncedWarn)
		synced = cache.WaitForCacheSync(sctx.Done(), w.pools.HasSynced, w.adverts.HasSynced)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if !synced {
			w.log.Warn("MetalLB objects not readable yet: are the metallb.io CRDs installed and is edged allowed to list them? Pools in raft stay as they are",
				"namespace", w.opts.Namespace)
		}
	}
	w.rebuild()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
			w.rebuild()
		}
	}
}

// rebuild merges the current objects into the file's configuration.
func (w *PoolWatcher) rebuild() {
	objs, byName := w.objects()
	w.mu.Lock()
	base := w.base
	w.mu.Unlock()
	cfg, err := base.WithObjects(objs)
	w.mu.Lock()
	if err != nil {
		// Say it once per distinct error (resyncs rebuild too); the Event
		// once per distinct error on the leader, also on a new leader.
		msg := err.Error()
		logIt := msg != w.lastErr
		eventIt := msg != w.lastEvent && w.opts.IsLeader()
		w.lastErr = msg
		if eventIt {
			w.lastEvent = msg
		}
		w.mu.Unlock()
		if logIt {
			w.log.Warn("invalid MetalLB object: the last good pools stay in force", "err", err)
		}
		if eventIt {
			w.report(err, byName)
		}
		return
	}
	changed := w.cur == nil || !samePoolConfig(w.cur, cfg)
	w.cur, w.lastErr, w.lastEvent = cfg, "", ""
	w.mu.Unlock()
	if changed {
		w.log.Info("pools from MetalLB objects", "namespace", w.opts.Namespace, "pools", len(cfg.LBPools), "objects", len(objs))
	}
}

// report writes a Warning Event on the object an error names.
func (w *PoolWatcher) report(err error, byName map[string]runtime.Object) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return
	}
	if obj, ok := byName[ce.File]; ok {
		w.recorder.Event(obj, corev1.EventTypeWarning, ReasonBadConfig, fmt.Sprintf("%v; edged keeps the last good pools", err))
	}
}

// objects lists the cached objects, pools first, each kind by name, as
// config.Objects, and maps each Source back to its object.
func (w *PoolWatcher) objects() ([]config.Object, map[string]runtime.Object) {
	var out []config.Object
	byName := map[string]runtime.Object{}
	for _, inf := range []cache.SharedIndexInformer{w.pools, w.adverts} {
		us := listUnstructured(inf)
		sort.Slice(us, func(i, j int) bool { return us[i].GetName() < us[j].GetName() })
		for _, u := range us {
			o := toObject(u)
			out = append(out, o)
			byName[o.Source] = u
		}
	}
	return out, byName
}

// toObject keeps the parts of u the config reads: the rest (managedFields,
// status) is the cluster's business.
func toObject(u *unstructured.Unstructured) config.Object {
	spec, ok := u.Object["spec"]
	if !ok || spec == nil {
		spec = map[string]any{}
	}
	doc := map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
		"metadata":   map[string]any{"name": u.GetName(), "namespace": u.GetNamespace(), "labels": u.GetLabels()},
		"spec":       spec,
	}
	b, _ := json.Marshal(doc) // from decoded JSON: cannot fail
	return config.Object{Source: fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName()), Data: b}
}

// samePoolConfig reports whether two merges give the allocator and the
// announcers the same input.
// (a.Pools are the source of a.LBPools, compared as lbpool.Pool; two merges
// of the same objects build L2Advertisements alike, so reflect.DeepEqual
// is their equality.)
func samePoolConfig(a, b *config.Config) bool {
	return lbpool.PoolsEqual(a.LBPools, b.LBPools) && reflect.DeepEqual(a.L2Advertisements, b.L2Advertisements)
}
