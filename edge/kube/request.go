package kube

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/goldentooth/edged/lbpool"
)

var everything = labels.Everything()

// MetalLB's annotation names; each has a metallb.universe.tf/ and a
// metallb.io/ spelling.
const (
	annLoadBalancerIPs = "loadBalancerIPs"
	annAddressPool     = "address-pool"
	annAllowSharedIP   = "allow-shared-ip"
	// AnnAllocatedFromPool is written with the pool an address came from.
	AnnAllocatedFromPool = "metallb.universe.tf/ip-allocated-from-pool"
)

var prefixes = []string{"metallb.universe.tf/", "metallb.io/"}

// ErrAnnotation is returned for an unusable annotation (conflicting
// spellings, unparsable addresses).
var ErrAnnotation = errors.New("bad annotation")

// annotation returns the value under either spelling, or an error when both
// are set and differ.
func annotation(svc *corev1.Service, name string) (string, error) {
	a, aok := svc.Annotations[prefixes[0]+name]
	b, bok := svc.Annotations[prefixes[1]+name]
	if aok && bok && a != b {
		return "", fmt.Errorf("%w: %s%s=%q and %s%s=%q conflict; keep one", ErrAnnotation, prefixes[0], name, a, prefixes[1], name, b)
	}
	if aok {
		return a, nil
	}
	return b, nil
}

// Handled reports whether the controller serves svc with class.
func Handled(svc *corev1.Service, class string) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || (class != "" && *svc.Spec.LoadBalancerClass == class)
}

// BuildRequest turns a Service into an allocation request. Pure.
func BuildRequest(svc *corev1.Service) (lbpool.Request, error) {
	key := svc.Namespace + "/" + svc.Name
	req := lbpool.Request{
		Key: key, Namespace: svc.Namespace, ServiceLabels: svc.Labels,
		TrafficPolicyCluster: svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal,
	}
	ips, err := annotation(svc, annLoadBalancerIPs)
	if err != nil {
		return req, err
	}
	if ips == "" && svc.Spec.LoadBalancerIP != "" {
		ips = svc.Spec.LoadBalancerIP
	}
	for _, s := range strings.Split(ips, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return req, fmt.Errorf("%w: address %q: %v", ErrAnnotation, s, err)
		}
		req.IPs = append(req.IPs, ip)
	}
	if req.Pool, err = annotation(svc, annAddressPool); err != nil {
		return req, err
	}
	if req.SharingKey, err = annotation(svc, annAllowSharedIP); err != nil {
		return req, err
	}
	for _, p := range svc.Spec.Ports {
		req.Ports = append(req.Ports, lbpool.Port{Protocol: string(p.Protocol), Port: p.Port})
	}
	req.Families = families(svc)
	if len(svc.Spec.Selector) > 0 {
		parts := make([]string, 0, len(svc.Spec.Selector))
		for k, v := range svc.Spec.Selector {
			parts = append(parts, k+"="+v)
		}
		sort.Strings(parts)
		req.Selector = strings.Join(parts, ",")
	}
	return req, nil
}

func families(svc *corev1.Service) []lbpool.Family {
	var out []lbpool.Family
	for _, f := range svc.Spec.IPFamilies {
		if f == corev1.IPv6Protocol {
			out = append(out, lbpool.IPv6)
		} else {
			out = append(out, lbpool.IPv4)
		}
	}
	return out
}

// statusIPs returns the ingress IPs currently in the Service status.
func statusIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, ip)
		}
	}
	return out
}
