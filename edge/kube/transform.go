package kube

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// trimForCache drops what edged never reads from objects before they enter
// the informer caches: managedFields on every object (often larger than
// the object itself), the image list of Nodes, and of EndpointSlices
// everything but the Service name label, ports, addresses and conditions
// (the controller's slices carry an owner reference, annotations, the
// Service's labels, and per endpoint a Pod reference, node name and zone).
// Holding 1,279 Services and their EndpointSlices, this is most of the
// cache. Writes are not affected: an update without managedFields keeps the
// server's, and Nodes and EndpointSlices are only read.
func trimForCache(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *corev1.Node:
		o.Status.Images = nil
	case *discoveryv1.EndpointSlice:
		trimSlice(o)
	}
	return obj, nil
}

func trimSlice(es *discoveryv1.EndpointSlice) {
	es.Annotations, es.OwnerReferences, es.GenerateName = nil, nil, ""
	if len(es.Labels) > 1 {
		name, ok := es.Labels[discoveryv1.LabelServiceName]
		es.Labels = nil
		if ok {
			es.Labels = map[string]string{discoveryv1.LabelServiceName: name}
		}
	}
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		ep.TargetRef, ep.NodeName, ep.Zone, ep.Hostname, ep.Hints, ep.DeprecatedTopology = nil, nil, nil, nil, nil, nil
	}
}
