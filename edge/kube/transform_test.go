package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
	// A tombstone passes through unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: svc}
	if out, err := trimForCache(tomb); err != nil || out.(cache.DeletedFinalStateUnknown).Key != "ns/web" {
		t.Errorf("tombstone: %v %v", out, err)
	}
}
