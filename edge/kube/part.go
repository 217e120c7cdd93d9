package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"

	"github.com/goldentooth/edged/broadcast"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// kubeWorkers is how many Services are reconciled at once; status writes
// are the slow part and the apiserver takes several in parallel.
const kubeWorkers = 4

// Part builds the one Kubernetes cache (Cache) every host keeps,
// runs the Service controller on it (writes on the leader only) and serves
// the same cache, read-only, to the HAProxy part.
type Part struct {
	cfg    *config.Config                // start-up settings (client, class, informers)
	file   atomic.Pointer[config.Config] // edged.yaml in force: pools and advertisements; nil until a Reload
	client *Client
	dyn    dynamic.Interface
	log    *slog.Logger

	cache   atomic.Pointer[Cache]
	ctrl    atomic.Pointer[Controller]
	metallb atomic.Pointer[PoolWatcher]
	store   atomic.Pointer[raft.Store]
	secrets atomic.Pointer[TLSSecrets]
	synced  atomic.Bool
	changes broadcast.Group // cached objects, TLS Secrets, first sync
}

// NewPart returns the part for client.
func NewPart(cfg *config.Config, client *Client, log *slog.Logger) *Part {
	installKubeMetrics() // before Run creates the work queue
	return &Part{cfg: cfg, client: client, log: log}
}

// WatchMetalLB gives the part dyn for MetalLB's resources: it reads the
// IPAddressPool and L2Advertisement objects when kubernetes.metallbCRDs is
// on (their pools are merged with edged.yaml's, see Pools) and writes
// their status, and it keeps ServiceL2Status objects current whenever the
// apiserver serves that CRD (Announcers). Call it before Run.
func (k *Part) WatchMetalLB(dyn dynamic.Interface) { k.dyn = dyn }

// Pools implements edge.PoolSource: edged.yaml's pools, merged with MetalLB's
// objects from the cluster when kubernetes.metallbCRDs is on (not known
// until those have been read once; an invalid object keeps the last good
// merge).
func (k *Part) Pools() ([]lbpool.Pool, map[string][]string, bool) {
	if !k.crds() {
		f := k.fileConfig()
		return f.LBPools, f.Eligibility(), true
	}
	w := k.metallb.Load()
	if w == nil {
		return nil, nil, false
	}
	cfg, ok := w.Config()
	if !ok {
		return nil, nil, false
	}
	return cfg.LBPools, cfg.Eligibility(), true
}

// PoolsErr implements edge.PoolSource: why the latest MetalLB objects
// were refused (the last good merge stays in force), nil while the pools in
// force are the latest or kubernetes.metallbCRDs is off.
func (k *Part) PoolsErr() error {
	if w := k.metallb.Load(); w != nil && k.crds() {
		return w.Err()
	}
	return nil
}

// PoolConfig is the configuration whose pools and advertisements are in
// force: edged.yaml's, merged with MetalLB's objects when
// kubernetes.metallbCRDs is on (edged.yaml's alone until they are read).
// Consumers that map IPs to advertisements (the announcer's interfaces)
// should read it rather than the file's config.
func (k *Part) PoolConfig() *config.Config {
	if w := k.metallb.Load(); w != nil {
		if cfg, ok := w.Config(); ok {
			return cfg
		}
	}
	return k.fileConfig()
}

// fileConfig is the edged.yaml in force: the last one Reload took, else
// the one the part was built with.
func (k *Part) fileConfig() *config.Config {
	if f := k.file.Load(); f != nil {
		return f
	}
	return k.cfg
}

// Reload makes cfg's pools and advertisements the part's (edge.Reloadable):
// Pools and PoolConfig return them at once, merged with MetalLB's objects
// when those are watched. Every other setting of the part (the client, the
// class, the informers) is read at start only.
func (k *Part) Reload(cfg *config.Config) error {
	k.file.Store(cfg)
	if w := k.metallb.Load(); w != nil {
		w.SetBase(cfg)
	}
	return nil
}

func (k *Part) crds() bool { return k.cfg.Kubernetes.MetallbCRDs && k.dyn != nil }

// Name implements Part.
func (k *Part) Name() string { return "kubernetes" }

// Ready is true once the informer caches synced.
func (k *Part) Ready() bool { return k.Synced() }

// Run starts the controller against store until ctx ends.
func (k *Part) Run(ctx context.Context, store *raft.Store) error {
	shared := NewCache(k.client, k.cfg.Kubernetes.Resync, k.changes.Notify)
	c := New(k.client, shared, store, Options{
		Class:  k.cfg.Kubernetes.LoadBalancerClass,
		IPMode: corev1.LoadBalancerIPMode(k.cfg.Kubernetes.IPMode),
		Logger: k.log,
	})
	k.cache.Store(shared)
	k.ctrl.Store(c)
	k.store.Store(store)
	var informers sync.WaitGroup
	informers.Go(func() { shared.Run(ctx) })
	defer informers.Wait() // ctx has ended: they stop too
	secrets := NewTLSSecrets(ctx, k.client, k.cfg.Kubernetes.Resync, k.changes.Notify)
	k.secrets.Store(secrets)
	defer secrets.Wait() // ctx has ended: it stops too
	if k.cfg.Kubernetes.MetallbCRDs && k.dyn == nil {
		k.log.Warn("kubernetes.metallbCRDs is on but no dynamic client was given: using edged.yaml's pools only")
	}
	if k.crds() {
		w := NewPoolWatcher(k.dyn, k.client, k.fileConfig(), PoolWatcherOptions{
			Namespace: k.cfg.Kubernetes.MetallbNamespace,
			Resync:    k.cfg.Kubernetes.Resync,
			IsLeader:  store.IsLeader,
			Logger:    k.log,
		})
		k.metallb.Store(w)
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		defer func() { <-done }() // ctx has ended: it stops too
	}
	an := NewAnnouncers(k.client, k.dyn, shared, store, c.recorder, AnnouncersOptions{
		Namespace:   k.cfg.Kubernetes.MetallbNamespace,
		Resync:      k.cfg.Kubernetes.Resync,
		PoolConfig:  k.PoolConfig,
		PoolObjects: k.poolObjects(),
		Logger:      k.log,
	})
	announcing := make(chan struct{})
	go func() { defer close(announcing); an.Run(ctx) }()
	defer func() { <-announcing }() // ctx has ended: it stops too
	go func() {
		if shared.WaitForSync(ctx) {
			k.synced.Store(true)
			k.changes.Notify()
		}
	}()
	if err := c.Run(ctx, kubeWorkers); err != nil {
		return fmt.Errorf("service controller: %w", err)
	}
	return nil
}

// poolObjects lists MetalLB's IPAddressPool objects when the pools come
// from them (nil otherwise: edged.yaml's pools have no object to report in).
func (k *Part) poolObjects() func() []*unstructured.Unstructured {
	if w := k.metallb.Load(); w != nil {
		return w.PoolObjects
	}
	return nil
}

// Event implements proxy.EventSink: a Warning Event on a Service ("namespace/name")
// or a Node, its message cut to maxEventMessage bytes. Only the leader
// records it: every host renders the same model and would otherwise repeat
// the Event once per host.
func (k *Part) Event(kind, key, reason, message string) {
	if s := k.store.Load(); s == nil || !s.IsLeader() {
		return
	}
	c := k.ctrl.Load()
	if c == nil {
		return
	}
	if len(message) > maxEventMessage {
		message = message[:maxEventMessage-3] + "..."
	}
	switch kind {
	case lbconfig.KindService:
		c.Warn(key, reason, message)
	case lbconfig.KindNode:
		c.WarnNode(key, reason, message)
	}
}

// maxEventMessage bounds an Event's message (events.k8s.io/v1 refuses
// notes over 1 kB; a longer one would be lost, not shortened).
const maxEventMessage = 1024

// Changes implements proxy.Cache.
func (k *Part) Changes() (<-chan struct{}, func()) { return k.changes.Subscribe() }

// Synced implements proxy.Cache.
func (k *Part) Synced() bool { return k.synced.Load() }

// Services implements proxy.Cache: the cached objects themselves, shared
// with the controller; callers must not modify them.
func (k *Part) Services() []*corev1.Service {
	if c := k.cache.Load(); c != nil {
		list, _ := c.Services.List(labels.Everything())
		return list
	}
	return nil
}

// EndpointSlices implements proxy.Cache (shared objects, read-only).
func (k *Part) EndpointSlices() []*discoveryv1.EndpointSlice {
	if c := k.cache.Load(); c != nil {
		list, _ := c.EndpointSlices.List(labels.Everything())
		return list
	}
	return nil
}

// Nodes implements proxy.Cache (shared objects, read-only).
func (k *Part) Nodes() []*corev1.Node {
	if c := k.cache.Load(); c != nil {
		list, _ := c.Nodes.List(labels.Everything())
		return list
	}
	return nil
}

// Secret implements proxy.Cache from a watch of the cluster's
// kubernetes.io/tls Secrets (TLSSecrets), started when the first
// Service names one; a change of any of them notifies Changes.
func (k *Part) Secret(namespace, name string) (*corev1.Secret, bool) {
	sec := k.secrets.Load()
	if sec == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
	defer cancel()
	s, err := sec.Get(ctx, namespace, name)
	if err != nil {
		if errors.Is(err, ErrSecretsNotSynced) {
			k.log.Warn("TLS Secrets not read yet", "err", err)
		}
		return nil, false
	}
	return s, true
}

// secretTimeout bounds the wait for the first list of TLS Secrets.
const secretTimeout = 5 * time.Second

// ServiceLabels returns the labels of the Services holding ip, from the
// raft state (raft.Store.ServiceLabels): what L2 advertisements'
// serviceSelectors match (edge/l2's Speaker.UseServiceLabels). None until
// Run has the store.
func (k *Part) ServiceLabels(ip netip.Addr) []map[string]string {
	if s := k.store.Load(); s != nil {
		return s.ServiceLabels(ip)
	}
	return nil
}
