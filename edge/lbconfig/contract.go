package lbconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/haproxy"
)

// This file is the part of the Service contract that kube-proxy used to
// honour and HAProxy now must: loadBalancerSourceRanges, sessionAffinity
// and the ipMode written into the Service's status (docs/service-contract.md).

// AnnSourceRanges is the cloud-provider annotation kube-proxy reads when
// spec.loadBalancerSourceRanges is empty (comma-separated CIDRs).
const AnnSourceRanges = "service.beta.kubernetes.io/load-balancer-source-ranges"

// Errors wrapped by ParseService's errors.
var (
	// ErrSourceRanges: a loadBalancerSourceRanges entry edged cannot
	// enforce exactly; the Service is not served rather than served wider.
	ErrSourceRanges = errors.New("invalid loadBalancerSourceRanges")
	// ErrSessionAffinity: a sessionAffinity edged cannot honour; the
	// Service is not served rather than served without it.
	ErrSessionAffinity = errors.New("invalid sessionAffinity")
)

// DefaultAffinity is Kubernetes' default
// sessionAffinityConfig.clientIP.timeoutSeconds (10,800 s).
const DefaultAffinity = 3 * time.Hour

// ParseService returns svc's settings: its annotations (ParseAnnotations)
// plus the spec fields HAProxy enforces, loadBalancerSourceRanges and
// ClientIP session affinity. Any error leaves the whole Service out: a
// Service whose source ranges cannot be read is never served open.
func ParseService(svc *corev1.Service, nodePort bool) (Settings, error) {
	s, annErr := ParseAnnotations(svc.Annotations, nodePort)
	ranges, rangeErr := SourceRanges(svc)
	aff, affErr := sessionAffinity(svc)
	if err := errors.Join(annErr, rangeErr, affErr); err != nil {
		return DefaultSettings(nodePort), err
	}
	s.SourceRanges, s.Affinity = ranges, aff
	return s, nil
}

// SourceRanges parses spec.loadBalancerSourceRanges, or when it is empty
// the AnnSourceRanges annotation, as kube-proxy does: edged's one rule for
// who may reach a Service, on HAProxy's frontends and on the nftables
// forwards alike. nil, nil: no restriction. Each entry must be a
// CIDR (surrounding spaces allowed, as kube-proxy trims them); host bits
// are masked off as net.ParseCIDR does. IPv4-mapped IPv6 prefixes and more
// than haproxy.MaxSourceRanges entries are refused: never a wider rule.
func SourceRanges(svc *corev1.Service) ([]netip.Prefix, error) {
	raw, where := svc.Spec.LoadBalancerSourceRanges, "spec.loadBalancerSourceRanges"
	if len(raw) == 0 {
		v, ok := svc.Annotations[AnnSourceRanges]
		if !ok {
			return nil, nil
		}
		raw, where = strings.Split(v, ","), AnnSourceRanges
	}
	if len(raw) > haproxy.MaxSourceRanges {
		return nil, fmt.Errorf("%s has %d entries, at most %d are enforced; the Service is not served: %w", where, len(raw), haproxy.MaxSourceRanges, ErrSourceRanges)
	}
	out := make([]netip.Prefix, 0, len(raw))
	for _, r := range raw {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil || p.Addr().Is4In6() {
			return nil, fmt.Errorf("%s entry %q is not an IPv4 or IPv6 CIDR; the Service is not served until it is fixed: %w", where, clip(r, 64), ErrSourceRanges)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sessionAffinity returns the ClientIP affinity timeout (zero: none).
func sessionAffinity(svc *corev1.Service) (time.Duration, error) {
	switch svc.Spec.SessionAffinity {
	case "", corev1.ServiceAffinityNone:
		return 0, nil
	case corev1.ServiceAffinityClientIP:
	default:
		return 0, fmt.Errorf("spec.sessionAffinity %q: want None or ClientIP: %w", clip(string(svc.Spec.SessionAffinity), 64), ErrSessionAffinity)
	}
	c := svc.Spec.SessionAffinityConfig
	if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
		return DefaultAffinity, nil
	}
	sec := *c.ClientIP.TimeoutSeconds
	if sec < 1 || time.Duration(sec)*time.Second > haproxy.MaxAffinity {
		return 0, fmt.Errorf("spec.sessionAffinityConfig.clientIP.timeoutSeconds %d: want 1 to %d: %w", sec, int(haproxy.MaxAffinity/time.Second), ErrSessionAffinity)
	}
	return time.Duration(sec) * time.Second, nil
}

// clip shortens an untrusted value quoted in a message.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Rewrites reports whether HAProxy changes what a Service's endpoints
// receive compared with a direct connection: it terminates TLS, speaks
// HTTP (adding X-Forwarded-For) or sends a PROXY header. Such a Service
// must not be short-circuited to its endpoints inside the cluster.
func (s Settings) Rewrites() bool {
	return s.Mode == haproxy.ModeHTTP || s.TLSSecret != "" || s.ProxyV2
}

// IPMode returns the status.loadBalancer.ingress[].ipMode edged writes for
// svc; global is edged.yaml's kubernetes.ipMode. Proxy (global) makes
// every Service Proxy. VIP (the default) lets kube-proxy send in-cluster
// traffic for the VIP straight to the endpoints (as MetalLB's Services
// are), except where that would bypass what HAProxy does to the traffic
// (Settings.Rewrites) or what it refuses (annotations or spec fields edged
// rejects): those are Proxy, so in-cluster clients get what outside
// clients get. accept-proxy alone stays VIP: in-cluster clients send no
// PROXY header, and reaching the endpoints directly serves them.
func IPMode(svc *corev1.Service, global corev1.LoadBalancerIPMode) corev1.LoadBalancerIPMode {
	if global == corev1.LoadBalancerIPModeProxy {
		return global
	}
	s, err := ParseService(svc, false) // the backend mode does not matter here
	if err != nil || s.Rewrites() {
		return corev1.LoadBalancerIPModeProxy
	}
	return corev1.LoadBalancerIPModeVIP
}
