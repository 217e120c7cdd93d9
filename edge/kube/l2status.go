package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ServiceL2Statuses is MetalLB's ServiceL2Status resource (MetalLB 0.14+):
// one object per Service and announcing node, in MetalLB's namespace.
var ServiceL2Statuses = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "servicel2statuses"}

// The labels MetalLB puts on a ServiceL2Status (its e2etest/pkg/status),
// which its tools select by, and the one edged adds to tell its own
// objects from a MetalLB speaker's: edged lists, changes and deletes only
// objects with LabelManagedBy=ManagedBy.
const (
	LabelAnnounceNode     = "metallb.io/node"
	LabelServiceName      = "metallb.io/service-name"
	LabelServiceNamespace = "metallb.io/service-namespace"
	LabelManagedBy        = "app.kubernetes.io/managed-by"
	ManagedBy             = "edged"
)

// l2Want is one ServiceL2Status edged wants: the Service's IPs announced by
// Node on Interfaces (empty: the host's own choice, MetalLB's "all").
type l2Want struct {
	Node       string
	Interfaces []string
}

// l2Have is one existing ServiceL2Status of edged's for a Service.
type l2Have struct {
	Name   string
	Labels map[string]string
	Status l2Status
}

// l2Status is the status of a ServiceL2Status (MetalLBServiceL2Status).
type l2Status struct {
	Node, ServiceName, ServiceNamespace string
	Interfaces                          []string
}

// l2Plan is what brings a Service's ServiceL2Statuses in line: objects to
// delete (by name), then objects to create (named l2Name) and statuses to
// write.
type l2Plan struct {
	Delete []string
	Write  []l2Write
}

// l2Write creates the object Name when Create, then sets its status.
type l2Write struct {
	Name   string
	Create bool
	Status l2Status
}

// l2Name is the name of the ServiceL2Status of Service namespace/name
// announced by node: MetalLB's "l2-" prefix with a suffix derived from the
// three, where MetalLB lets the apiserver pick five random characters
// (generateName). A fixed name makes every write idempotent: a retry, an
// informer that has not seen the last create yet, or two leaders for a
// moment, all meet the same object instead of creating a second one.
// MetalLB's tools select these objects by label, never by name.
func l2Name(namespace, name, node string) string {
	h := sha256.Sum256([]byte(namespace + "/" + name + "/" + node))
	return "l2-" + hex.EncodeToString(h[:8])
}

// planL2 compares a Service's existing objects with the wanted ones. An
// object survives only if it has the name l2Name gives its node, labels
// that name the Service and node, and a status that names no other
// Service or node (those fields are immutable in MetalLB's CRD, so a wrong
// one is deleted and created again); its status is written if it differs.
// Pure: same input, same plan, in want's order.
func planL2(namespace, name string, want []l2Want, have []l2Have) l2Plan {
	var p l2Plan
	kept := map[string]l2Have{}
	for _, h := range have {
		node := h.Labels[LabelAnnounceNode]
		ok := slices.ContainsFunc(want, func(w l2Want) bool { return w.Node == node }) &&
			h.Name == l2Name(namespace, name, node) &&
			h.Labels[LabelServiceName] == name && h.Labels[LabelServiceNamespace] == namespace &&
			(h.Status.Node == "" || h.Status.Node == node) &&
			(h.Status.ServiceName == "" || h.Status.ServiceName == name) &&
			(h.Status.ServiceNamespace == "" || h.Status.ServiceNamespace == namespace)
		if _, dup := kept[node]; ok && !dup {
			kept[node] = h
			continue
		}
		p.Delete = append(p.Delete, h.Name)
	}
	for _, w := range want {
		st := l2Status{Node: w.Node, ServiceName: name, ServiceNamespace: namespace, Interfaces: w.Interfaces}
		h, ok := kept[w.Node]
		if ok && sameL2Status(h.Status, st) {
			continue
		}
		p.Write = append(p.Write, l2Write{Name: l2Name(namespace, name, w.Node), Create: !ok, Status: st})
	}
	return p
}

func sameL2Status(a, b l2Status) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Interfaces, b.Interfaces)
}

// l2Labels are the labels of the object for Service namespace/name and node.
func l2Labels(namespace, name, node string) map[string]string {
	return map[string]string{LabelAnnounceNode: node, LabelServiceName: name, LabelServiceNamespace: namespace, LabelManagedBy: ManagedBy}
}

// l2HaveOf reads one cached object; its fields are untrusted and only
// compared, never used as anything but a name to delete.
func l2HaveOf(u *unstructured.Unstructured) l2Have {
	h := l2Have{Name: u.GetName(), Labels: u.GetLabels()}
	h.Status.Node, _, _ = unstructured.NestedString(u.Object, "status", "node")
	h.Status.ServiceName, _, _ = unstructured.NestedString(u.Object, "status", "serviceName")
	h.Status.ServiceNamespace, _, _ = unstructured.NestedString(u.Object, "status", "serviceNamespace")
	ifs, _, _ := unstructured.NestedSlice(u.Object, "status", "interfaces")
	for _, i := range ifs {
		m, _ := i.(map[string]any)
		n, _ := m["name"].(string)
		h.Status.Interfaces = append(h.Status.Interfaces, n)
	}
	return h
}

// patch is the merge patch of the status subresource that sets st.
func (st l2Status) patch() map[string]any {
	var ifs []any // nil: the key is removed
	for _, n := range st.Interfaces {
		ifs = append(ifs, map[string]any{"name": n})
	}
	return map[string]any{"status": map[string]any{
		"node": st.Node, "serviceName": st.ServiceName, "serviceNamespace": st.ServiceNamespace, "interfaces": ifs,
	}}
}
