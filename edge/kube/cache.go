package kube

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Cache is the one set of informers edged keeps on every host: Services,
// EndpointSlices and Nodes, trimmed to what edged reads (trimForCache).
// It is built once and passed to every reader (the Service controller, the
// HAProxy part). It guarantees that onChange runs after every add, change
// and delete of any cached object, never for an informer resync (the same
// resourceVersion: nothing changed), and that OnService handlers learn the
// name of every such Service.
type Cache struct {
	// Services lists the cached Services.
	Services corelisters.ServiceLister
	// EndpointSlices lists the cached EndpointSlices.
	EndpointSlices discoverylisters.EndpointSliceLister
	// Nodes lists the cached Nodes.
	Nodes corelisters.NodeLister

	svc       cache.SharedIndexInformer
	informers []cache.SharedIndexInformer
	synced    []cache.InformerSynced
	onChange  func()
}

// NewCache builds the informers of client with resync (0: none); onChange
// (may be nil) must not block. Run starts them.
func NewCache(client *Client, resync time.Duration, onChange func()) *Cache {
	c := &Cache{onChange: onChange}
	c.svc = client.informer(client.core, "services", &corev1.Service{}, resync)
	eps := client.informer(client.discovery, "endpointslices", &discoveryv1.EndpointSlice{}, resync)
	nodes := client.informer(client.core, "nodes", &corev1.Node{}, resync)
	c.informers = []cache.SharedIndexInformer{c.svc, eps, nodes}
	for _, inf := range c.informers {
		_ = inf.SetTransform(trimForCache) // fails only once started
		c.synced = append(c.synced, inf.HasSynced)
		_, _ = inf.AddEventHandler(changeHandler(func(any) { c.changed() }))
	}
	c.Services = corelisters.NewServiceLister(c.svc.GetIndexer())
	c.EndpointSlices = discoverylisters.NewEndpointSliceLister(eps.GetIndexer())
	c.Nodes = corelisters.NewNodeLister(nodes.GetIndexer())
	return c
}

// OnService calls f (which must not block) with the name of every Service
// added, changed or deleted. Register before Run.
func (c *Cache) OnService(f func(cache.ObjectName)) {
	_, _ = c.svc.AddEventHandler(changeHandler(func(obj any) {
		name, err := cache.DeletionHandlingObjectToName(obj)
		if err != nil {
			utilruntime.HandleError(err)
			return
		}
		f(name)
	}))
}

// serviceNames names every Service in the cache (none if it cannot list).
func (c *Cache) serviceNames() []cache.ObjectName {
	svcs, err := c.Services.List(everything)
	if err != nil {
		return nil
	}
	out := make([]cache.ObjectName, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, cache.MetaObjectToName(s))
	}
	return out
}

// changeHandler calls f for adds, deletes and updates that are not resyncs.
func changeHandler(f func(obj any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: f,
		UpdateFunc: func(old, cur any) {
			if !isResync(old, cur) {
				f(cur)
			}
		},
		DeleteFunc: f,
	}
}

// isResync reports whether an update is an informer resync: the same
// resourceVersion, so nothing changed. Like sample-controller, edged drops
// those; a 10-minute resync of the reference pool's 1,279 Services
// otherwise re-synced (and re-rendered HAProxy for) every one.
func isResync(old, cur any) bool {
	a, aok := old.(metav1.Object)
	b, bok := cur.(metav1.Object)
	return aok && bok && a.GetResourceVersion() == b.GetResourceVersion()
}

func (c *Cache) changed() {
	if c.onChange != nil {
		c.onChange()
	}
}

// Run runs the informers until ctx ends and returns once they stopped.
func (c *Cache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, inf := range c.informers {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Wait()
}

// WaitForSync blocks until every informer has synced or ctx ends, and
// reports whether they synced.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), c.synced...)
}
