package lbconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

// injection is a Node InternalIP that netip.ParseAddr accepts (the zone
// may hold any bytes) and that, rendered as is, adds a global section with
// a program HAProxy's master would run as root.
const injection = "fe80::1%x]:1\nglobal\n    program pwn\n        command /bin/sh -c id\n"

func node(name string, addrs ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

// problems returns "Kind Key: sentinel" for each problem, to compare.
func problems(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		s := "?"
		for _, e := range []error{ErrAnnotation, certs.ErrSecret, ErrEndpoint, ErrTooManyEndpoints,
			ErrNoNodePort, ErrPortNotAllocated, haproxy.ErrInvalidModel} {
			if errors.Is(p.Err, e) {
				s = e.Error()
				break
			}
		}
		out = append(out, p.Kind+" "+p.Key+": "+s)
	}
	return out
}

// TestBuildHostileObjects: each hostile or odd object is reported on its
// own, with its sentinel, and the good Service still renders; nothing of a
// hostile value reaches the rendered file.
func TestBuildHostileObjects(t *testing.T) {
	np := map[string]string{AnnBackend: "nodeport"}
	udp := lbService("t", "udp", nil)
	udp.Spec.Ports = append(udp.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	noNP := lbService("t", "no-nodeport", np)
	noNP.Spec.Ports[0].NodePort = 0
	shared := lbService("t", "shared", nil)
	shared.Spec.Ports = append(shared.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 81, Protocol: corev1.ProtocolTCP})
	in := Input{
		Services: ptrs(lbService("t", "good", nil), lbService("t", "nodeport", np), udp, noNP, shared,
			lbService("t", "loopback", nil)),
		Nodes: ptrs(node("evil", injection, "::ffff:10.4.0.9"), node("n1", "10.4.0.11")),
		Slices: ptrs(
			slice("t", "good", discoveryv1.Endpoint{Addresses: []string{"10.244.0.5"}}),
			slice("t", "loopback", discoveryv1.Endpoint{Addresses: []string{"127.0.0.1"}},
				discoveryv1.Endpoint{Addresses: []string{"fd00::5%eth0"}}, discoveryv1.Endpoint{Addresses: []string{"10.244.0.6"}}),
		),
		Allocations: map[string]lbpool.Allocation{
			"t/good": alloc("10.4.11.1"), "t/nodeport": alloc("10.4.11.2"), "t/udp": alloc("10.4.11.3"),
			"t/no-nodeport": alloc("10.4.11.4"), "t/loopback": alloc("10.4.11.6"),
			// shared asked for 80 and 81; the allocator granted 81 only (80 is another Service's on this IP).
			"t/shared": {IPs: []netip.Addr{netip.MustParseAddr("10.4.11.5")}, Ports: []lbpool.Port{{Protocol: "TCP", Port: 81}}},
		},
	}
	m, ps := Build(in)
	want := []string{
		"Node evil: " + ErrEndpoint.Error(),
		"Service t/loopback: " + ErrEndpoint.Error(),
		"Service t/no-nodeport: " + ErrNoNodePort.Error(),
		"Service t/shared: " + ErrPortNotAllocated.Error(),
	}
	got := problems(ps)
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", d, ps)
	}
	servers := map[string][]string{}
	for _, b := range m.Backends {
		for _, s := range b.Servers {
			servers[b.Name] = append(servers[b.Name], s.Addr.String())
		}
	}
	wantServers := map[string][]string{
		"t_good_80": {"10.244.0.5:8080"}, "t_nodeport_80": {"10.4.0.11:30080"},
		"t_loopback_80": {"10.244.0.6:8080"},
	}
	if d := cmp.Diff(wantServers, servers); d != "" {
		t.Errorf("servers (-want +got):\n%s", d)
	}
	var binds []string
	for _, f := range m.Frontends {
		binds = append(binds, f.Bind.String())
	}
	slices.Sort(binds)
	wantBinds := []string{"10.4.11.1:80", "10.4.11.2:80", "10.4.11.3:80", "10.4.11.5:81", "10.4.11.6:80"}
	if d := cmp.Diff(wantBinds, binds); d != "" {
		t.Errorf("frontends (-want +got):\n%s", d)
	}
	out, err := haproxy.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "program") || strings.Contains(string(out), "global") {
		t.Fatalf("hostile Node address reached the file:\n%s", out)
	}
}

// TestBuildLongNames: the longest legal names still render, each section
// name fits and is unique, and a name is the same on every build.
func TestBuildLongNames(t *testing.T) {
	ns, long := strings.Repeat("n", 63), strings.Repeat("s", 63)
	a, b := lbService(ns, long, nil), lbService(ns, long[:62]+"t", nil)
	a.Spec.Ports = append(a.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	ports := []lbpool.Port{{Protocol: "TCP", Port: 80}, {Protocol: "TCP", Port: 443}}
	in := Input{Services: ptrs(a, b), Allocations: map[string]lbpool.Allocation{
		ns + "/" + a.Name: {IPs: []netip.Addr{netip.MustParseAddr("fd00:4::1"), netip.MustParseAddr("10.4.11.1")}, Ports: ports},
		ns + "/" + b.Name: alloc("10.4.11.2"),
	}}
	m, ps := Build(in)
	if len(ps) != 0 || len(m.Frontends) != 5 || len(m.Backends) != 3 {
		t.Fatalf("%d frontends, %d backends, problems %v; want 5, 3, none", len(m.Frontends), len(m.Backends), ps)
	}
	if _, err := haproxy.Render(m); err != nil {
		t.Fatalf("Render: %v", err)
	}
	again, _ := Build(in)
	if d := cmp.Diff(m, again, cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })); d != "" {
		t.Errorf("second build differs:\n%s", d)
	}
}

// TestBuildTooManyEndpoints: two full EndpointSlices (1,000 endpoints of
// 100 addresses each) become at most haproxy.MaxServers servers.
func TestBuildTooManyEndpoints(t *testing.T) {
	var all []discoveryv1.EndpointSlice
	for s := range 2 {
		var eps []discoveryv1.Endpoint
		for i := range 1000 {
			var addrs []string
			for j := range 100 {
				addrs = append(addrs, fmt.Sprintf("10.%d.%d.%d", 100+s, i/250, (i%250)*1+j%2))
			}
			eps = append(eps, discoveryv1.Endpoint{Addresses: addrs})
		}
		es := slice("t", "big", eps...)
		es.Name = fmt.Sprintf("big-%d", s)
		all = append(all, es)
	}
	m, ps := Build(Input{Services: ptrs(lbService("t", "big", nil)), Slices: ptrs(all...),
		Allocations: map[string]lbpool.Allocation{"t/big": alloc("10.4.11.1")}})
	if got := problems(ps); !slices.Equal(got, []string{"Service t/big: " + ErrTooManyEndpoints.Error()}) {
		t.Errorf("problems = %v", got)
	}
	if n := len(m.Backends[0].Servers); n != haproxy.MaxServers {
		t.Errorf("%d servers, want %d", n, haproxy.MaxServers)
	}
}
