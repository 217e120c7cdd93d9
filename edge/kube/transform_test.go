package kube

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestTrimForCache(t *testing.T) {
	mf := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", ManagedFields: mf,
		Annotations: map[string]string{"metallb.io/loadBalancerIPs": "10.4.11.7"}}}
	out, err := trimForCache(svc)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Service)
	if got.ManagedFields != nil {
		t.Errorf("managedFields kept: %v", got.ManagedFields)
	}
	if got.Annotations["metallb.io/loadBalancerIPs"] != "10.4.11.7" {
		t.Errorf("annotations changed: %v", got.Annotations)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{ManagedFields: mf},
		Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"x"}}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.4.0.5"}}}}
	out, _ = trimForCache(node)
	n := out.(*corev1.Node)
	if n.Status.Images != nil || n.ManagedFields != nil || len(n.Status.Addresses) != 1 {
		t.Errorf("node trimmed wrongly: images %v, managedFields %v, addresses %v", n.Status.Images, n.ManagedFields, n.Status.Addresses)
	}
	zone, nodeName, ready := "a", "n1", true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-x1", GenerateName: "web-", ManagedFields: mf,
			Labels:          map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io", "app": "web"},
			Annotations:     map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-29T09:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Service", Name: "web"}}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}, NodeName: &nodeName, Zone: &zone}},
	}
	out, _ = trimForCache(es)
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	if d := cmp.Diff(want, out); d != "" {
		t.Errorf("endpointslice trimmed wrongly (-want +got):\n%s", d)
	}
	// A tombstone passes through unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: svc}
	if out, err := trimForCache(tomb); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "ns/web" {
		t.Errorf("tombstone: %v %v", out, err)
	}
}
