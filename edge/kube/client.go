package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Scheme knows the only API types edged reads or writes: core/v1 (Services,
// Nodes, Secrets, Events) and discovery/v1 (EndpointSlices).
var Scheme = runtime.NewScheme()

var codecs serializer.CodecFactory

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(discoveryv1.AddToScheme(Scheme))
	codecs = serializer.NewCodecFactory(Scheme)
}

// Content types edged asks for: protobuf for the built-in types it watches
// (cheaper to decode than JSON at 1,279 Services and their slices), JSON as
// the fallback an apiserver always speaks.
const (
	contentProtobuf = runtime.ContentTypeProtobuf
	acceptTypes     = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
)

// Client is the part of the Kubernetes API edged uses: Services (watch,
// status, one annotation), EndpointSlices and Nodes (watch), Secrets (get)
// and Events (create, patch). It is client-go's REST client over Scheme.
//
// client-go's generated Clientset and SharedInformerFactory would do the
// same for these five resources, but they link every API group of
// Kubernetes and register all of them at start: about twice the binary and
// ~20 MB more resident memory on every edge host (docs/operate.md,
// "Footprint").
type Client struct {
	core, discovery rest.Interface
}

// NewClient returns a Client for cfg; both API groups share one HTTP
// client (one connection pool, one rate limiter per group as in client-go).
func NewClient(cfg *rest.Config) (*Client, error) {
	base := rest.CopyConfig(cfg)
	if base.UserAgent == "" {
		base.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if base.ContentType == "" {
		base.ContentType = contentProtobuf
	}
	if base.AcceptContentTypes == "" {
		base.AcceptContentTypes = acceptTypes
	}
	hc, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("kubernetes http client: %w", err)
	}
	restFor := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(base)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		rc, err := rest.RESTClientForConfigAndClient(c, hc)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for %v: %w", gv, err)
		}
		return rc, nil
	}
	core, err := restFor(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, err
	}
	discovery, err := restFor(discoveryv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	return &Client{core: core, discovery: discovery}, nil
}

// informer returns a shared informer over every object of resource (all
// namespaces), indexed by namespace for the listers.
func (c *Client) informer(api rest.Interface, resource string, obj runtime.Object, resync time.Duration) cache.SharedIndexInformer {
	lw := cache.NewListWatchFromClient(api, resource, metav1.NamespaceAll, fields.Everything())
	return cache.NewSharedIndexInformer(lw, obj, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// UpdateServiceStatus writes svc's status subresource.
func (c *Client) UpdateServiceStatus(ctx context.Context, svc *corev1.Service) error {
	return c.core.Put().Namespace(svc.Namespace).Resource("services").Name(svc.Name).
		SubResource("status").Body(svc).Do(ctx).Error()
}

// PatchService applies a JSON merge patch to Service namespace/name.
func (c *Client) PatchService(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := c.patchService(ctx, namespace, name, patch)
	return err
}

// patchService is PatchService returning the Service as patched.
func (c *Client) patchService(ctx context.Context, namespace, name string, patch []byte) (*corev1.Service, error) {
	out := &corev1.Service{}
	err := c.core.Patch(types.MergePatchType).Namespace(namespace).Resource("services").Name(name).
		Body(patch).Do(ctx).Into(out)
	return out, err
}

// Secret reads one Secret.
func (c *Client) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := c.core.Get().Namespace(namespace).Resource("secrets").Name(name).Do(ctx).Into(s)
	return s, err
}

// eventCacheSize is the number of objects whose recent Events the
// recorder remembers to aggregate repeats and rate-limit per object
// (client-go's default is 4,096 in each of three caches, ~1 MB once a full
// pool has had an Event each). edged writes an Event per allocation or
// failure, rarely the same one twice in a row, so a small cache loses
// nothing but the folding of repeats on more than this many objects at once.
const eventCacheSize = 256

// newBroadcaster returns an EventBroadcaster with edged's cache size.
func newBroadcaster() record.EventBroadcaster {
	return record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
}

// EventSink returns the sink an EventBroadcaster records through.
func (c *Client) EventSink() record.EventSink { return eventSink{c.core} }

// eventTimeout bounds one Event write (the recorder's calls carry no
// context; a hung write would otherwise hold its goroutine).
const eventTimeout = 30 * time.Second

// eventSink writes Events into their own namespace, as client-go's
// EventSinkImpl does.
type eventSink struct{ core rest.Interface }

func (s eventSink) write(req *rest.Request, e *corev1.Event) (*corev1.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	out := &corev1.Event{}
	if err := req.Namespace(e.Namespace).Resource("events").Do(ctx).Into(out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	return s.write(s.core.Post().Body(e), e)
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	return s.write(s.core.Put().Name(e.Name).Body(e), e)
}

func (s eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	return s.write(s.core.Patch(types.StrategicMergePatchType).Name(e.Name).Body(data), e)
}
