package kube

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestBuildRequest(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		lbIP    string
		wantIPs []netip.Addr
		wantErr error
	}{
		{name: "spec ip", lbIP: "10.4.11.5", wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.5")}},
		{name: "annotation wins", lbIP: "10.4.11.5", ann: map[string]string{"metallb.io/loadBalancerIPs": "10.4.11.6"}, wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.6")}},
		{name: "same both spellings", ann: map[string]string{"metallb.io/loadBalancerIPs": "10.4.11.6", "metallb.universe.tf/loadBalancerIPs": "10.4.11.6"}, wantIPs: []netip.Addr{netip.MustParseAddr("10.4.11.6")}},
		{name: "conflict", ann: map[string]string{"metallb.io/address-pool": "a", "metallb.universe.tf/address-pool": "b"}, wantErr: ErrAnnotation},
		{name: "bad ip", ann: map[string]string{"metallb.io/loadBalancerIPs": "nope"}, wantErr: ErrAnnotation},
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
				return
			}
			if diff := cmp.Diff(tt.wantIPs, req.IPs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("IPs (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzBuildRequest(f *testing.F) {
	f.Add("10.4.11.1,fd00::1", "pool", "key")
	f.Fuzz(func(t *testing.T, ips, pool, share string) {
		svc := lbService("ns", "s", 80)
		svc.Annotations = map[string]string{"metallb.io/loadBalancerIPs": ips, "metallb.io/address-pool": pool, "metallb.io/allow-shared-ip": share}
		_, _ = BuildRequest(svc)
	})
}

func TestHandled(t *testing.T) {
	ours, other := "edged", "x"
	for _, tt := range []struct {
		name  string
		typ   corev1.ServiceType
		class *string
		want  bool
	}{
		{"lb unset class", corev1.ServiceTypeLoadBalancer, nil, true},
		{"lb our class", corev1.ServiceTypeLoadBalancer, &ours, true},
		{"lb other class", corev1.ServiceTypeLoadBalancer, &other, false},
		{"clusterip", corev1.ServiceTypeClusterIP, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := lbService("ns", "s", 80)
			s.Spec.Type, s.Spec.LoadBalancerClass = tt.typ, tt.class
			if got := Handled(s, ours); got != tt.want {
				t.Errorf("Handled = %v, want %v", got, tt.want)
			}
		})
	}
}
