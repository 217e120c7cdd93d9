package kube

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/lbpool"
)

var everything = labels.Everything()

// MetalLB's annotation names; each has a metallb.universe.tf/ and a
// metallb.io/ spelling.
const (
	annLoadBalancerIPs = "loadBalancerIPs"
	annAddressPool     = "address-pool"
	annAllowSharedIP   = "allow-shared-ip"
	// AnnAllocatedFromPool is written with the pool an address came from
	// (MetalLB's current key).
	AnnAllocatedFromPool = "metallb.io/ip-allocated-from-pool"
	// AnnAllocatedFromPoolDeprecated is the older spelling of
	// AnnAllocatedFromPool (MetalLB before 0.13 wrote only it). edged keeps
	// both equal, so tools that read either one agree.
	AnnAllocatedFromPoolDeprecated = "metallb.universe.tf/ip-allocated-from-pool"
)

// poolAnnotations are the keys that name a Service's pool, written together.
var poolAnnotations = []string{AnnAllocatedFromPool, AnnAllocatedFromPoolDeprecated}

// poolAnnotated reports whether svc's pool annotations all say pool (with
// nil: none is set). Either spelling out of step means a patch.
func poolAnnotated(svc *corev1.Service, pool *string) bool {
	for _, k := range poolAnnotations {
		v, ok := svc.Annotations[k]
		if ok != (pool != nil) || (pool != nil && v != *pool) {
			return false
		}
	}
	return true
}

var prefixes = []string{"metallb.universe.tf/", "metallb.io/"}

// ErrAnnotation is returned for an unusable annotation (conflicting
// spellings, unparsable addresses, an over-long value).
var ErrAnnotation = errors.New("bad annotation")

// maxAnnotationValue bounds the pool and sharing-key annotations: a pool is
// named like a Kubernetes object (a DNS subdomain, at most 253 bytes), and a
// sharing key longer than that is no key anyone typed. Both values travel
// through the raft log and into Events.
const maxAnnotationValue = 253

// quoteLen bounds how much of an untrusted value an error quotes.
const quoteLen = 64

// quoted renders an untrusted value for an error, an Event or a log line:
// %q-escaped (no raw newline) and clipped to quoteLen bytes.
func quoted(s string) string {
	if len(s) > quoteLen {
		return fmt.Sprintf("%q...", s[:quoteLen])
	}
	return fmt.Sprintf("%q", s)
}

// annotation returns the value under either spelling and the key it was
// read from, or an error when both are set and differ.
func annotation(svc *corev1.Service, name string) (key, value string, err error) {
	ka, kb := prefixes[0]+name, prefixes[1]+name
	a, aok := svc.Annotations[ka]
	b, bok := svc.Annotations[kb]
	switch {
	case aok && bok && a != b:
		return "", "", fmt.Errorf("%w: %s=%s and %s=%s conflict; keep one", ErrAnnotation, ka, quoted(a), kb, quoted(b))
	case aok:
		return ka, a, nil
	}
	return kb, b, nil
}

// shortAnnotation is annotation for values that must stay short.
func shortAnnotation(svc *corev1.Service, name string) (string, error) {
	key, v, err := annotation(svc, name)
	if err == nil && len(v) > maxAnnotationValue {
		err = fmt.Errorf("%w: %s is %d bytes long; at most %d are accepted", ErrAnnotation, key, len(v), maxAnnotationValue)
	}
	return v, err
}

// Handled reports whether a controller configured with class serves svc.
// The rule is MetalLB's: with a class configured, only Services of exactly
// that class; without one, only Services without a class. So two load
// balancers in one cluster never both claim the class-less Services.
func Handled(svc *corev1.Service, class string) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}

// BuildRequest turns a Service into an allocation request. Pure.
func BuildRequest(svc *corev1.Service) (lbpool.Request, error) {
	key := cache.MetaObjectToName(svc).String()
	req := lbpool.Request{
		Key: key, Namespace: svc.Namespace, ServiceLabels: svc.Labels,
		TrafficPolicyCluster: svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal,
	}
	var err error
	if req.IPs, err = requestedIPs(svc); err != nil {
		return req, err
	}
	if req.Pool, err = shortAnnotation(svc, annAddressPool); err != nil {
		return req, err
	}
	if req.SharingKey, err = shortAnnotation(svc, annAllowSharedIP); err != nil {
		return req, err
	}
	for _, p := range svc.Spec.Ports {
		req.Ports = append(req.Ports, lbpool.Port{Protocol: string(p.Protocol), Port: p.Port})
	}
	req.Families = families(svc)
	// MetalLB (>= 0.14.9) gives a PreferDualStack Service what its pool has.
	req.PreferDualStack = svc.Spec.IPFamilyPolicy != nil && *svc.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyPreferDualStack
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

// requestedIPs parses the addresses the Service asks for: the
// loadBalancerIPs annotation, else spec.loadBalancerIP. Each must pass
// lbpool.ParseUnicast; the error names the field it came from.
func requestedIPs(svc *corev1.Service) ([]netip.Addr, error) {
	field, list, err := annotation(svc, annLoadBalancerIPs)
	if err != nil {
		return nil, err
	}
	fromAnnotation := list != ""
	if !fromAnnotation {
		field, list = "spec.loadBalancerIP", svc.Spec.LoadBalancerIP
	}
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip, err := lbpool.ParseUnicast(s)
		if err != nil {
			err = fmt.Errorf("%s: %w; give plain IP addresses, at most one per family, comma-separated", field, err)
			if fromAnnotation {
				err = fmt.Errorf("%w: %w", ErrAnnotation, err)
			}
			return nil, err
		}
		out = append(out, ip)
	}
	return out, nil
}

// statusIPs returns the ingress IPs currently in the Service status that
// may be adopted. The status is as untrusted as the spec (anyone who may
// update the status may write it), so an address lbpool.ParseUnicast
// refuses is simply not adopted.
func statusIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := lbpool.ParseUnicast(in.IP); err == nil {
			out = append(out, ip)
		}
	}
	return out
}
