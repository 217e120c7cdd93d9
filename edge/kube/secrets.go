package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ErrSecretsNotSynced reports a TLSSecrets read before its first list
// finished within the caller's deadline.
var ErrSecretsNotSynced = errors.New("TLS Secrets not read from the API server yet")

// tlsSecretSelector limits the watch to Secrets HAProxy can serve: no
// other Secret (service account tokens, Helm releases, ...) is sent to
// edged or cached.
var tlsSecretSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))

// TLSSecrets watches the Secrets of type kubernetes.io/tls in every
// namespace, without their labels and annotations (a
// last-applied-configuration annotation repeats the whole Secret). It
// starts on the first Get, so a cluster without a TLS Service watches no
// Secret, and calls onChange after every change once started.
type TLSSecrets struct {
	ctx      context.Context
	client   *Client
	resync   time.Duration
	onChange func()

	once   sync.Once
	inf    cache.SharedIndexInformer
	lister corelisters.SecretLister
	done   chan struct{}
}

// NewTLSSecrets returns the cache; it runs until ctx ends (Wait waits for
// that).
func NewTLSSecrets(ctx context.Context, client *Client, resync time.Duration, onChange func()) *TLSSecrets {
	return &TLSSecrets{ctx: ctx, client: client, resync: resync, onChange: onChange, done: make(chan struct{})}
}

func (s *TLSSecrets) start() {
	lw := cache.NewListWatchFromClient(s.client.core, "secrets", metav1.NamespaceAll, tlsSecretSelector)
	s.inf = cache.NewSharedIndexInformer(lw, &corev1.Secret{}, s.resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = s.inf.SetTransform(trimSecret)
	if s.onChange != nil {
		_, _ = s.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.onChange() },
			UpdateFunc: func(any, any) { s.onChange() },
			DeleteFunc: func(any) { s.onChange() },
		})
	}
	s.lister = corelisters.NewSecretLister(s.inf.GetIndexer())
	go func() { defer close(s.done); s.inf.RunWithContext(s.ctx) }()
}

// Get returns Secret namespace/name from the cache, starting the watch on
// the first call and waiting for its first list until ctx ends. A Secret
// that exists but is not of type kubernetes.io/tls is not found.
func (s *TLSSecrets) Get(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s.once.Do(s.start)
	if s.inf == nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrSecretsNotSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.inf.HasSynced) {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrSecretsNotSynced)
	}
	return s.lister.Secrets(namespace).Get(name)
}

// Wait returns once the watch has stopped, at once when it never started;
// call it after ctx ended (a Get after Wait does not start the watch).
func (s *TLSSecrets) Wait() {
	s.once.Do(func() {})
	if s.inf != nil {
		<-s.done
	}
}

// trimSecret drops what edged never reads from a cached Secret.
func trimSecret(obj any) (any, error) {
	if sec, ok := obj.(*corev1.Secret); ok {
		sec.ManagedFields, sec.Annotations, sec.Labels, sec.OwnerReferences = nil, nil, nil, nil
	}
	return obj, nil
}
