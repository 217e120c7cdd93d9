package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// trimForCache drops what edged never reads from objects before they enter
// the informer caches: managedFields on every object (often larger than
// the object itself) and the image list of Nodes. Holding 1,279 Services
// and their EndpointSlices, this is most of the cache. Writes are not
// affected: an update without managedFields keeps the server's, and Nodes
// are only read.
func trimForCache(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return obj, nil
}
