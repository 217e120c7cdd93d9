package kube

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/lbpool"
)

// maxRequestError bounds what BuildRequest may put into an Event: the field
// name, a clipped quote of the value and the advice fit well within it.
const maxRequestError = 512

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestBuildRequest(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		lbIP    string
		wantIPs []netip.Addr
		wantErr error
		wantMsg string // a substring of the error
	}{
		{name: "spec ip", lbIP: "10.4.11.5", wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.5")}},
		{name: "annotation wins", lbIP: "10.4.11.5", ann: map[string]string{"metallb.io/loadBalancerIPs": "10.4.11.6"}, wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.6")}},
		{name: "same both spellings", ann: map[string]string{"metallb.io/loadBalancerIPs": "10.4.11.6", "metallb.universe.tf/loadBalancerIPs": "10.4.11.6"}, wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.6")}},
		{name: "dual stack", ann: map[string]string{"metallb.universe.tf/loadBalancerIPs": "10.4.11.6, fd00:4::6"}, wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.6"), netip.MustParseAddr("fd00:4::6")}},
		{name: "conflict", ann: map[string]string{"metallb.io/address-pool": "a", "metallb.universe.tf/address-pool": "b"}, wantErr: ErrAnnotation},
		{name: "conflict quotes clipped", ann: map[string]string{"metallb.io/address-pool": "a\nb", "metallb.universe.tf/address-pool": strings.Repeat("x", 10000)},
			wantErr: ErrAnnotation, wantMsg: `metallb.io/address-pool="a\nb"`},
		{name: "bad ip", ann: map[string]string{"metallb.io/loadBalancerIPs": "nope"}, wantErr: ErrAnnotation, wantMsg: `metallb.io/loadBalancerIPs: "nope": not an IP address`},
		{name: "spec ip with zone", lbIP: "10.4.11.5%eth0", wantErr: lbpool.ErrBadAddress, wantMsg: `spec.loadBalancerIP: "10.4.11.5%eth0"`},
		{name: "spec ip6 with zone", lbIP: "fd00:4::5%eth0", wantErr: lbpool.ErrBadAddress, wantMsg: "spec.loadBalancerIP: "},
		{name: "zone carrying config", lbIP: "fd00:4::5%x\nglobal\n  program evil", wantErr: lbpool.ErrBadAddress, wantMsg: `"fd00:4::5%x\nglobal\n  program evil"`},
		{name: "annotation ip with zone", ann: map[string]string{"metallb.universe.tf/loadBalancerIPs": "10.4.11.6,fd00:4::6%eth0"},
			wantErr: ErrAnnotation, wantMsg: `metallb.universe.tf/loadBalancerIPs: "fd00:4::6%eth0"`},
		{name: "annotation zone carrying config", ann: map[string]string{"metallb.io/loadBalancerIPs": "fe80::1%x]:1\nglobal\n"}, wantErr: lbpool.ErrBadAddress},
		{name: "ipv4-mapped", lbIP: "::ffff:10.4.11.5", wantErr: lbpool.ErrBadAddress, wantMsg: "write 10.4.11.5"},
		{name: "loopback", lbIP: "127.0.0.1", wantErr: lbpool.ErrBadAddress},
		{name: "link-local", ann: map[string]string{"metallb.io/loadBalancerIPs": "169.254.169.254"}, wantErr: lbpool.ErrBadAddress},
		{name: "huge value clipped", lbIP: strings.Repeat("1", 100000), wantErr: lbpool.ErrBadAddress, wantMsg: "..."},
		{name: "huge pool name", ann: map[string]string{"metallb.io/address-pool": strings.Repeat("p", 254)}, wantErr: ErrAnnotation, wantMsg: "metallb.io/address-pool is 254 bytes long"},
		{name: "huge sharing key", ann: map[string]string{"metallb.universe.tf/allow-shared-ip": strings.Repeat("k", 300)}, wantErr: ErrAnnotation, wantMsg: "allow-shared-ip is 300 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := lbService("ns", "s", 80)
			svc.Annotations = tt.ann
			svc.Spec.LoadBalancerIP = tt.lbIP
			req, err := BuildRequest(svc)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				checkEventSafe(t, err)
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q lacks %q", err, tt.wantMsg)
				}
				return
			}
			if diff := cmp.Diff(tt.wantIPs, req.IPs, addrComparer); diff != "" {
				t.Errorf("IPs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildRequestFamilies: the families come from spec.ipFamilies in
// order, and only ipFamilyPolicy PreferDualStack lets the allocator leave
// one out.
func TestBuildRequestFamilies(t *testing.T) {
	pol := func(p corev1.IPFamilyPolicy) *corev1.IPFamilyPolicy { return &p }
	for _, tt := range []struct {
		name   string
		policy *corev1.IPFamilyPolicy
		fams   []corev1.IPFamily
		want   lbpool.Request
	}{
		{"unset", nil, nil, lbpool.Request{}},
		{"single", pol(corev1.IPFamilyPolicySingleStack), []corev1.IPFamily{corev1.IPv6Protocol}, lbpool.Request{Families: []lbpool.Family{lbpool.IPv6}}},
		{"prefer", pol(corev1.IPFamilyPolicyPreferDualStack), []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol},
			lbpool.Request{Families: []lbpool.Family{lbpool.IPv6, lbpool.IPv4}, PreferDualStack: true}},
		{"require", pol(corev1.IPFamilyPolicyRequireDualStack), []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			lbpool.Request{Families: []lbpool.Family{lbpool.IPv4, lbpool.IPv6}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := lbService("ns", "s", 80)
			svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = tt.policy, tt.fams
			req, err := BuildRequest(svc)
			if err != nil {
				t.Fatal(err)
			}
			got := lbpool.Request{Families: req.Families, PreferDualStack: req.PreferDualStack}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("families (-want +got):\n%s", d)
			}
		})
	}
}

// checkEventSafe fails when err's text could not go into an Event and a
// log line as it is: a raw line break, or no bound on its length.
func checkEventSafe(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || len(msg) > maxRequestError {
		t.Fatalf("error (%d bytes) is not safe for an Event: %q", len(msg), msg)
	}
}

func FuzzBuildRequest(f *testing.F) {
	f.Add("10.4.11.1,fd00::1", "10.4.11.2", "pool", "key")
	f.Add("fe80::1%x]:1\nglobal\n", "fd00::1%eth0", "a\nb", "")
	f.Fuzz(func(t *testing.T, ips, lbIP, pool, share string) {
		svc := lbService("ns", "s", 80)
		svc.Annotations = map[string]string{"metallb.io/loadBalancerIPs": ips, "metallb.io/address-pool": pool, "metallb.io/allow-shared-ip": share}
		svc.Spec.LoadBalancerIP = lbIP
		req, err := BuildRequest(svc)
		if err != nil {
			checkEventSafe(t, err)
			return
		}
		for _, ip := range req.IPs {
			if ip.Zone() != "" || ip.Is4In6() || !ip.IsGlobalUnicast() {
				t.Fatalf("BuildRequest accepted %v", ip)
			}
		}
	})
}

func TestStatusIPs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want []netip.Addr
	}{
		{"plain", []string{"10.4.11.5", "fd00:4::5"}, []netip.Addr{netip.MustParseAddr("10.4.11.5"), netip.MustParseAddr("fd00:4::5")}},
		{"zone refused", []string{"fd00:4::5%eth0", "10.4.11.5"}, []netip.Addr{netip.MustParseAddr("10.4.11.5")}},
		{"zone carrying config", []string{"fe80::1%x]:1\nglobal\n"}, nil},
		{"mapped, loopback, hostname-only", []string{"::ffff:10.4.11.5", "127.0.0.1", ""}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := lbService("ns", "s", 80)
			for _, ip := range tt.in {
				svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
			}
			if diff := cmp.Diff(tt.want, statusIPs(svc), addrComparer); diff != "" {
				t.Errorf("statusIPs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHandled: MetalLB's rule. With a class configured only that class is
// served; without one only Services without a class.
func TestHandled(t *testing.T) {
	ours, other := "edged", "x"
	for _, tt := range []struct {
		name       string
		configured string
		typ        corev1.ServiceType
		class      *string
		want       bool
	}{
		{"class configured, service without", ours, corev1.ServiceTypeLoadBalancer, nil, false},
		{"class configured, service ours", ours, corev1.ServiceTypeLoadBalancer, &ours, true},
		{"class configured, service other", ours, corev1.ServiceTypeLoadBalancer, &other, false},
		{"class configured, clusterip ours", ours, corev1.ServiceTypeClusterIP, &ours, false},
		{"no class, service without", "", corev1.ServiceTypeLoadBalancer, nil, true},
		{"no class, service with one", "", corev1.ServiceTypeLoadBalancer, &other, false},
		{"no class, nodeport", "", corev1.ServiceTypeNodePort, nil, false},
		{"no class, clusterip", "", corev1.ServiceTypeClusterIP, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := lbService("ns", "s", 80)
			s.Spec.Type, s.Spec.LoadBalancerClass = tt.typ, tt.class
			if got := Handled(s, tt.configured); got != tt.want {
				t.Errorf("Handled(class %q, configured %q) = %v, want %v", deref(tt.class), tt.configured, got, tt.want)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
