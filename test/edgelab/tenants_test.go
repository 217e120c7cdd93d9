package edgelab

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/test/wait"
)

// tenants creates the Kubernetes objects of TestHostileTenants (as a
// cluster admin: the tenants' side) and remembers what each one should
// cause. Its helpers take the (sub)test they fail.
type tenants struct {
	l   *Lab
	kc  kubernetes.Interface
	ctx context.Context
	// ns is the lab's namespace; the others are made by newTenants.
	ns, longNS, nsX, nsY string
	expect               []expectation
	longCert             tlsCert // the 253-character Secret's
	syncMap
}

// expectation is what one hostile object must cause.
type expectation struct {
	// what names the object in the report ("1 injected Node address").
	what string
	// kind, ns and name identify the Event's involvedObject (ns is empty
	// for a Node).
	kind, ns, name string
	// reasons are the Warning reasons that count (any one of them); none
	// means a legal object that must get no Warning Event at all.
	reasons []string
}

// maxLabel is the longest DNS label Kubernetes allows (RFC 1123): the
// longest namespace and Service name.
const maxLabel = 63

// longName returns a valid DNS label of n bytes starting with prefix.
func longName(prefix string, n int) string {
	b := []byte(prefix)
	for len(b) < n {
		b = append(b, 'a'+byte(len(b)%26))
	}
	return string(b[:n])
}

func newTenants(t *testing.T, l *Lab) *tenants {
	h := &tenants{l: l, kc: l.Kube(), ctx: context.Background(), ns: l.Namespace(),
		longNS: longName("ns", maxLabel), nsX: "tenant-x", nsY: "tenant-y"}
	for _, ns := range []string{h.longNS, h.nsX, h.nsY} {
		if _, err := h.kc.CoreV1().Namespaces().Create(h.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	return h
}

func (h *tenants) expectEvent(what, kind, ns, name string, reasons ...string) {
	h.expect = append(h.expect, expectation{what: what, kind: kind, ns: ns, name: name, reasons: reasons})
}

func (h *tenants) expectNoWarning(what, ns, name string) {
	h.expect = append(h.expect, expectation{what: what, kind: "Service", ns: ns, name: name})
}

func tcpPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

// service creates a LoadBalancer Service; mutate may change it first.
func (h *tenants) service(t testing.TB, ns, name string, ann map[string]string, mutate func(*corev1.Service), ports ...corev1.ServicePort) *corev1.Service {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: ports},
	}
	if mutate != nil {
		mutate(s)
	}
	got, err := h.kc.CoreV1().Services(ns).Create(h.ctx, s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	return got
}

// slicePorts is one EndpointSlice port per Service port name, all on
// PodPort.
func slicePorts(port int32, names ...string) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, n := range names {
		out = append(out, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// slice creates or replaces EndpointSlice name of Service svc with ready
// endpoints at addrs.
func (h *tenants) slice(ns, svc, name string, typ discoveryv1.AddressType, ports []discoveryv1.EndpointPort, addrs ...string) error {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: typ,
		Ports:       ports,
	}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}})
	}
	api := h.kc.DiscoveryV1().EndpointSlices(ns)
	old, err := api.Get(h.ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(h.ctx, es, metav1.CreateOptions{})
	case err == nil:
		es.ResourceVersion = old.ResourceVersion
		_, err = api.Update(h.ctx, es, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("endpointslice %s/%s: %w", ns, name, err)
	}
	return nil
}

// podSlice points Service ns/svc (port names) at pods with one IPv4
// EndpointSlice named svc-lab.
func (h *tenants) podSlice(t testing.TB, ns, svc string, names []string, pods ...Pod) {
	t.Helper()
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, p.Addr.Addr().String())
	}
	if err := h.slice(ns, svc, svc+"-lab", discoveryv1.AddressTypeIPv4, slicePorts(PodPort, names...), addrs...); err != nil {
		t.Fatal(err)
	}
}

// pod starts a pod server or fails the test.
func (h *tenants) pod(t testing.TB, name string) Pod {
	t.Helper()
	p, err := h.l.StartPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ipTimeout bounds the wait for a Service's address (the leader writes it
// after a raft commit).
const ipTimeout = 30 * time.Second

// waitIP waits for ns/name's first ingress IP.
func (h *tenants) waitIP(t testing.TB, ns, name string) netip.Addr {
	t.Helper()
	var ip netip.Addr
	if err := wait.Until(ipTimeout, ns+"/"+name+" ingress IP", func() (bool, string) {
		s, err := h.kc.CoreV1().Services(ns).Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, "no ingress"
		}
		ip, err = netip.ParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("%v\n%s", err, h.l.LogTails(2000))
	}
	return ip
}

// ingress returns ns/name's ingress IPs now.
func (h *tenants) ingress(ns, name string) ([]string, error) {
	s, err := h.kc.CoreV1().Services(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out, nil
}

// node creates a Node whose only address is an InternalIP (no kubelet
// runs: the status is the test's to write, as a kubelet may write its own).
func (h *tenants) node(t testing.TB, name, internalIP string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: internalIP}}}}
	got, err := h.kc.CoreV1().Nodes().Create(h.ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	if len(got.Status.Addresses) == 0 { // status dropped on create: write it
		got.Status = n.Status
		if _, err := h.kc.CoreV1().Nodes().UpdateStatus(h.ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("node %s status: %v", name, err)
		}
	}
}

// tlsSecret creates a kubernetes.io/tls Secret.
func (h *tenants) tlsSecret(t testing.TB, ns, name string, certPEM, keyPEM []byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	if _, err := h.kc.CoreV1().Secrets(ns).Create(h.ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret %s/%s: %v", ns, name, err)
	}
}
