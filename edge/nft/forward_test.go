package nft

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/lbpool"
)

var (
	vip4 = netip.MustParseAddr("10.4.11.5")
	vip6 = netip.MustParseAddr("fd00::5")
)

func svc(name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30053},
			{Name: "web", Port: 80, Protocol: corev1.ProtocolTCP},
		}},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

type ep struct {
	addr              string
	ready, serving, t *bool
	node              string
}

var yes, no = ptr(true), ptr(false)

func ptr[T any](v T) *T { return &v }

func slice(svcName string, proto corev1.Protocol, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: svcName + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("dns"), Port: &port, Protocol: &proto}},
	}
	for _, e := range eps {
		d := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.t}}
		if e.node != "" {
			d.NodeName = ptr(e.node)
		}
		es.Endpoints = append(es.Endpoints, d)
	}
	return es
}

func node(name string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

func allocs(m map[string]lbpool.Allocation) func(string) (lbpool.Allocation, bool) {
	return func(k string) (lbpool.Allocation, bool) { a, ok := m[k]; return a, ok }
}

var dnsAlloc = lbpool.Allocation{IPs: []netip.Addr{vip4}, Ports: []lbpool.Port{{Protocol: "UDP", Port: 53}, {Protocol: "TCP", Port: 80}}}

func targets(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name     string
		in       Input
		want     []Forward
		problems []string // reasons
	}{
		{
			name: "ready endpoints of the UDP port only, sorted, once each",
			in: Input{Services: []*corev1.Service{svc("a", nil)},
				Slices: []*discoveryv1.EndpointSlice{
					slice("a", corev1.ProtocolUDP, 5353, ep{addr: "10.1.0.2"}, ep{addr: "10.1.0.1", ready: yes}, ep{addr: "10.1.0.3", ready: no}),
					slice("a", corev1.ProtocolTCP, 8080, ep{addr: "10.1.0.9", ready: yes}), // same name, other protocol
				},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc})},
			want: []Forward{{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Endpoints: targets("10.1.0.1:5353", "10.1.0.2:5353")}},
		},
		{
			name: "terminating endpoints take new flows only when none is ready",
			in: Input{Services: []*corev1.Service{svc("a", nil), svc("b", nil)},
				Slices: []*discoveryv1.EndpointSlice{
					slice("a", corev1.ProtocolUDP, 53, ep{addr: "10.1.0.1", ready: yes}, ep{addr: "10.1.0.2", ready: no, serving: yes, t: yes}),
					slice("b", corev1.ProtocolUDP, 53, ep{addr: "10.2.0.2", ready: no, serving: yes, t: yes}, ep{addr: "10.2.0.3", ready: no, serving: no, t: yes}),
				},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc,
					"ns/b": {IPs: []netip.Addr{vip6, netip.MustParseAddr("10.4.11.6")}, Ports: dnsAlloc.Ports}})},
			want: []Forward{
				{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Endpoints: targets("10.1.0.1:53"), Draining: targets("10.1.0.2:53")},
				{VIP: netip.MustParseAddr("10.4.11.6"), Proto: UDP, Port: 53, Owner: "ns/b", Endpoints: targets("10.2.0.2:53")},
				{VIP: vip6, Proto: UDP, Port: 53, Owner: "ns/b"}, // no IPv6 endpoint: rejected
			},
		},
		{
			name: "bad addresses are left out and reported; the rest forwards",
			in: Input{Services: []*corev1.Service{svc("a", nil)},
				Slices: []*discoveryv1.EndpointSlice{slice("a", corev1.ProtocolUDP, 53,
					ep{addr: "127.0.0.1"}, ep{addr: "169.254.169.254"}, ep{addr: "10.1.0.1\nx"}, ep{addr: "10.1.0.1"})},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc})},
			want:     []Forward{{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Endpoints: targets("10.1.0.1:53")}},
			problems: []string{ReasonInvalidEndpoint},
		},
		{
			name: "nodeport mode: every node's InternalIP, the VIP's family",
			in: Input{Services: []*corev1.Service{svc("a", nil)}, NodePort: true,
				Nodes:  []*corev1.Node{node("n1", "10.4.0.1", "fd00::1"), node("n2", "10.4.0.2", "0.0.0.0")},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc})},
			want:     []Forward{{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Endpoints: targets("10.4.0.1:30053", "10.4.0.2:30053")}},
			problems: []string{ReasonInvalidEndpoint},
		},
		{
			name: "nodeport with externalTrafficPolicy Local: only nodes with an endpoint",
			in: Input{Services: []*corev1.Service{svc("a", func(s *corev1.Service) {
				s.Annotations = map[string]string{lbconfig.AnnBackend: "nodeport"}
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
				Slices: []*discoveryv1.EndpointSlice{slice("a", corev1.ProtocolUDP, 53, ep{addr: "10.1.0.1", node: "n2"})},
				Nodes:  []*corev1.Node{node("n1", "10.4.0.1"), node("n2", "10.4.0.2")},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc})},
			want: []Forward{{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Endpoints: targets("10.4.0.2:30053")}},
		},
		{
			name: "nodeport without a NodePort is not forwarded",
			in: Input{Services: []*corev1.Service{svc("a", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 0 })}, NodePort: true,
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc})},
			problems: []string{ReasonNoNodePort},
		},
		{
			name: "a bad backend annotation stops only this Service",
			in: Input{Services: []*corev1.Service{svc("a", func(s *corev1.Service) {
				s.Annotations = map[string]string{lbconfig.AnnBackend: "pods\n"}
			}), svc("b", func(s *corev1.Service) {
				s.Annotations = map[string]string{lbconfig.AnnMode: "bogus"} // HAProxy's business, reported there
			})},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc, "ns/b": {IPs: []netip.Addr{vip6}, Ports: dnsAlloc.Ports}})},
			want:     []Forward{{VIP: vip6, Proto: UDP, Port: 53, Owner: "ns/b"}},
			problems: []string{ReasonInvalidAnnotation},
		},
		{
			name: "a port the allocation did not grant is not forwarded; unallocated and non-LB Services are skipped",
			in: Input{Services: []*corev1.Service{
				svc("a", func(s *corev1.Service) { s.Spec.Ports[0].Port = 54 }),
				svc("b", nil),
				svc("c", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }),
			},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc, "ns/c": dnsAlloc})},
			problems: []string{ReasonPortNotAllocated},
		},
		{
			name: "source ranges: masked, by family; a bad entry admits nobody (lbconfig.SourceRanges, as HAProxy refuses the Service)",
			in: Input{Services: []*corev1.Service{svc("a", func(s *corev1.Service) {
				s.Spec.LoadBalancerSourceRanges = []string{" 192.168.1.7/24", "fd00::/8"}
			}), svc("b", func(s *corev1.Service) {
				s.Spec.LoadBalancerSourceRanges = []string{"fd00::/8", "everyone"}
			})},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": dnsAlloc, "ns/b": {IPs: []netip.Addr{vip6}, Ports: dnsAlloc.Ports}})},
			want: []Forward{
				{VIP: vip4, Proto: UDP, Port: 53, Owner: "ns/a", Restricted: true, Sources: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}},
				{VIP: vip6, Proto: UDP, Port: 53, Owner: "ns/b", Restricted: true},
			},
			problems: []string{ReasonInvalidSourceRange},
		},
		{
			name: "SCTP forwards too; out-of-range ports are refused",
			in: Input{Services: []*corev1.Service{svc("a", func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolSCTP}, {Name: "x", Port: 70000, Protocol: corev1.ProtocolUDP}}
			})},
				Slices: []*discoveryv1.EndpointSlice{slice("a", corev1.ProtocolSCTP, 2905, ep{addr: "10.1.0.1"})},
				Lookup: allocs(map[string]lbpool.Allocation{"ns/a": {IPs: []netip.Addr{vip4}, Ports: []lbpool.Port{{Protocol: "SCTP", Port: 53}}}})},
			want:     []Forward{{VIP: vip4, Proto: SCTP, Port: 53, Owner: "ns/a", Endpoints: targets("10.1.0.1:2905")}},
			problems: []string{ReasonInvalidPort},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := Build(tt.in)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("forwards (-want +got):\n%s", diff)
			}
			var reasons []string
			for _, p := range problems {
				reasons = append(reasons, p.Reason)
				if strings.Contains(p.Error(), "\n") {
					t.Errorf("problem message carries a raw newline: %q", p.Error())
				}
			}
			if diff := cmp.Diff(tt.problems, reasons); diff != "" {
				t.Errorf("problem reasons (-want +got):\n%s\n%v", diff, problems)
			}
		})
	}
}

func TestHeld(t *testing.T) {
	all := []Forward{{VIP: vip4, Port: 53}, {VIP: netip.MustParseAddr("10.4.11.6"), Port: 53}, {VIP: vip6, Port: 53}}
	got := Held(all, []netip.Addr{netip.MustParseAddr("10.4.11.6"), vip6})
	if len(got) != 2 || got[0].VIP != netip.MustParseAddr("10.4.11.6") || got[1].VIP != vip6 {
		t.Fatalf("Held = %v", got)
	}
	if got := Held(all, nil); len(got) != 0 {
		t.Fatalf("Held without leases = %v", got)
	}
}

// TestStaleFlows: flows are cleared exactly when their Forward is gone or
// their endpoint left it; a draining endpoint keeps its flows.
func TestStaleFlows(t *testing.T) {
	f := func(eps, draining []netip.AddrPort) Forward {
		return Forward{VIP: vip4, Proto: UDP, Port: 53, Endpoints: eps, Draining: draining}
	}
	a := netip.MustParseAddrPort("10.1.0.1:53")
	k := key{vip4, UDP, 53}
	tests := []struct {
		name     string
		old, cur []Forward
		want     flowFilter
	}{
		{"unchanged", []Forward{f(targets("10.1.0.1:53"), nil)}, []Forward{f(targets("10.1.0.1:53"), nil)}, nil},
		{"endpoint added", []Forward{f(targets("10.1.0.1:53"), nil)}, []Forward{f(targets("10.1.0.1:53", "10.1.0.2:53"), nil)}, nil},
		{"endpoint draining", []Forward{f(targets("10.1.0.1:53", "10.1.0.2:53"), nil)}, []Forward{f(targets("10.1.0.2:53"), targets("10.1.0.1:53"))}, nil},
		{"endpoint gone", []Forward{f(targets("10.1.0.2:53"), targets("10.1.0.1:53"))}, []Forward{f(targets("10.1.0.2:53"), nil)}, flowFilter{{k, a}}},
		{"forward gone (lease lost)", []Forward{f(targets("10.1.0.1:53", "10.1.0.2:53"), nil)}, nil, flowFilter{{k: k}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, staleFlows(tt.old, tt.cur), cmp.AllowUnexported(flow{}, key{}),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlowFilterMatch(t *testing.T) {
	ct := func(dst string, dport uint16, proto uint8, from string, sport uint16) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{SrcIP: net.ParseIP("192.0.2.9"), DstIP: net.ParseIP(dst), DstPort: dport, SrcPort: 40000, Protocol: proto},
			Reverse: netlink.IPTuple{SrcIP: net.ParseIP(from), SrcPort: sport, DstIP: net.ParseIP("10.4.0.9"), DstPort: 40000, Protocol: proto},
		}
	}
	k := key{vip4, UDP, 53}
	ff := flowFilter{{k: k, endpoint: netip.MustParseAddrPort("10.1.0.1:5353")}}
	all := flowFilter{{k: k}}
	for _, tt := range []struct {
		name string
		ff   flowFilter
		c    *netlink.ConntrackFlow
		want bool
	}{
		{"its endpoint", ff, ct("10.4.11.5", 53, 17, "10.1.0.1", 5353), true},
		{"another endpoint", ff, ct("10.4.11.5", 53, 17, "10.1.0.2", 5353), false},
		{"same address, other port", ff, ct("10.4.11.5", 53, 17, "10.1.0.1", 53), false},
		{"TCP to the VIP (HAProxy's)", all, ct("10.4.11.5", 53, 6, "10.4.11.5", 53), false},
		{"every flow of the port", all, ct("10.4.11.5", 53, 17, "10.1.0.7", 9), true},
		{"another port", all, ct("10.4.11.5", 54, 17, "10.1.0.7", 9), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ff.MatchConntrackFlow(tt.c); got != tt.want {
				t.Fatalf("match = %v, want %v", got, tt.want)
			}
		})
	}
}
