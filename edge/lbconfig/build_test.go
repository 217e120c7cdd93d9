package lbconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

func ptr[T any](v T) *T { return &v }

// ptrs returns pointers to copies of vs (Build takes a cache's pointers).
func ptrs[T any](vs ...T) []*T {
	out := make([]*T, len(vs))
	for i := range vs {
		out[i] = &vs[i]
	}
	return out
}

// tcp80 is the port lbService asks for, as the allocator grants it.
var tcp80 = []lbpool.Port{{Protocol: "TCP", Port: 80}}

// alloc is an allocation of ip with port 80/TCP granted.
func alloc(ip string) lbpool.Allocation {
	return lbpool.Allocation{IPs: []netip.Addr{netip.MustParseAddr(ip)}, Ports: tcp80}
}

func lbService(ns, name string, ann map[string]string) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}},
	}
}

func slice(ns, svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
		Endpoints:  eps,
	}
}

func TestBuild(t *testing.T) {
	vip := netip.MustParseAddr("10.4.11.1")
	in := Input{
		Services: ptrs(
			lbService("default", "web", nil),
			lbService("default", "bad", map[string]string{AnnCheckRise: "0"}),
			lbService("default", "unallocated", nil),
		),
		Slices: ptrs(slice("default", "web",
			discoveryv1.Endpoint{Addresses: []string{"10.244.0.5"}},
			discoveryv1.Endpoint{Addresses: []string{"10.244.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
			discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
		)),
		Allocations: map[string]lbpool.Allocation{"default/web": {IPs: []netip.Addr{vip}, Ports: tcp80}, "default/bad": alloc("10.4.11.2")},
	}
	got, errs := Build(in)
	if len(errs) != 1 || errs[0].Key != "default/bad" || !errors.Is(errs[0], ErrAnnotation) {
		t.Errorf("errs = %v, want one ErrAnnotation for default/bad", errs)
	}
	want := haproxy.Model{
		Frontends: []haproxy.Frontend{{Name: "default_web_80_10.4.11.1", Owner: "default/web", Bind: netip.AddrPortFrom(vip, 80), Mode: "tcp", Backend: "default_web_80"}},
		Backends: []haproxy.Backend{{Name: "default_web_80", Owner: "default/web", Mode: "tcp", Balance: "roundrobin", Check: haproxy.Check{Kind: "tcp"},
			Servers: []haproxy.Server{{Addr: netip.MustParseAddrPort("10.244.0.5:8080")}, {Addr: netip.MustParseAddrPort("10.244.0.7:8080"), Drain: true}}}},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("Build (-want +got):\n%s", d)
	}
	if _, err := haproxy.Render(got); err != nil {
		t.Errorf("Render(Build) = %v", err)
	}
}

func TestBuildExclude(t *testing.T) {
	refused := errors.New("refused by haproxy -c")
	in := Input{
		Services:    ptrs(lbService("default", "web", nil), lbService("default", "tls", nil)),
		Allocations: map[string]lbpool.Allocation{"default/web": alloc("10.4.11.1"), "default/tls": alloc("10.4.11.2")},
		Exclude:     map[string]error{"default/tls": refused},
	}
	got, errs := Build(in)
	if len(errs) != 1 || errs[0].Key != "default/tls" || !errors.Is(errs[0], refused) {
		t.Errorf("errs = %v, want the exclusion of default/tls", errs)
	}
	if len(got.Frontends) != 1 || got.Frontends[0].Backend != "default_web_80" {
		t.Errorf("frontends = %+v, want only default/web", got.Frontends)
	}
}

func TestBuildNodePortLocal(t *testing.T) {
	svc := lbService("default", "web", map[string]string{AnnBackend: "nodeport"})
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = 32000
	node := corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.4.0.11"}, {Type: corev1.NodeHostName, Address: "n1"}}}}
	got, errs := Build(Input{Services: ptrs(svc), Nodes: ptrs(node),
		Allocations: map[string]lbpool.Allocation{"default/web": alloc("10.4.11.1")}})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	be := got.Backends[0]
	wantCheck := haproxy.Check{Kind: haproxy.CheckHTTP, Path: "/healthz", Port: 32000}
	if d := cmp.Diff(wantCheck, be.Check); d != "" {
		t.Errorf("check (-want +got):\n%s", d)
	}
	if len(be.Servers) != 1 || be.Servers[0].Addr != netip.MustParseAddrPort("10.4.0.11:30080") {
		t.Errorf("servers = %v, want 10.4.0.11:30080", be.Servers)
	}
}

// TestBuildSlicesMerged: a Service's endpoints from several slices come out
// sorted by address, each address once, and other Services' slices (same
// name in another namespace) are not mixed in.
func TestBuildSlicesMerged(t *testing.T) {
	in := Input{
		Services: ptrs(lbService("a", "web", nil)),
		Slices: ptrs(
			slice("a", "web", discoveryv1.Endpoint{Addresses: []string{"10.244.0.9"}}, discoveryv1.Endpoint{Addresses: []string{"10.244.0.2"}}),
			slice("b", "web", discoveryv1.Endpoint{Addresses: []string{"10.244.0.1"}}),
			slice("a", "web", discoveryv1.Endpoint{Addresses: []string{"10.244.0.2"}}, discoveryv1.Endpoint{Addresses: []string{"10.244.0.5"}}),
		),
		Allocations: map[string]lbpool.Allocation{"a/web": alloc("10.4.11.1")},
	}
	got, _ := Build(in)
	var addrs []string
	for _, s := range got.Backends[0].Servers {
		addrs = append(addrs, s.Addr.String())
	}
	want := []string{"10.244.0.2:8080", "10.244.0.5:8080", "10.244.0.9:8080"}
	if d := cmp.Diff(want, addrs); d != "" {
		t.Errorf("servers (-want +got):\n%s", d)
	}
}

// BenchmarkBuild1279 builds the model of the reference pool full: 1,279
// Services with 10 endpoints each (what edged does on every change).
//
//	go test ./edge/lbconfig -run '^$' -bench Build1279 -benchmem
func BenchmarkBuild1279(b *testing.B) {
	in := Input{Allocations: map[string]lbpool.Allocation{}}
	for i := range 1279 {
		name := fmt.Sprintf("svc-%04d", i)
		in.Services = append(in.Services, ptr(lbService("default", name, nil)))
		var eps []discoveryv1.Endpoint
		for j := range 10 {
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", (i*10+j)/250, (i*10+j)%250+1)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		}
		in.Slices = append(in.Slices, ptr(slice("default", name, eps...)))
		in.Allocations["default/"+name] = lbpool.Allocation{IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 4, byte(11 + i/256), byte(i)})}, Ports: tcp80}
	}
	b.ReportAllocs()
	for b.Loop() {
		m, errs := Build(in)
		if len(errs) != 0 || len(m.Backends) != 1279 {
			b.Fatalf("%d backends, errors %v", len(m.Backends), errs)
		}
	}
}
