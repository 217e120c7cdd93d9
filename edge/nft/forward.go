package nft

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

// Proto is an IP protocol number nftables forwards.
type Proto uint8

// The forwarded protocols (TCP goes through HAProxy).
const (
	UDP  Proto = unix.IPPROTO_UDP
	SCTP Proto = unix.IPPROTO_SCTP
)

// String is the protocol's Kubernetes spelling.
func (p Proto) String() string {
	switch p {
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// protocol is the protocol's Kubernetes value.
func (p Proto) protocol() corev1.Protocol { return corev1.Protocol(p.String()) }

// protoOf maps a Kubernetes protocol to a forwarded one (ok false for TCP,
// the API's default, and anything unknown).
func protoOf(p corev1.Protocol) (Proto, bool) {
	switch p {
	case corev1.ProtocolUDP:
		return UDP, true
	case corev1.ProtocolSCTP:
		return SCTP, true
	}
	return 0, false
}

// MaxEndpoints bounds the endpoints of one Forward: the same bound as a
// HAProxy backend's servers (haproxy.MaxServers), so a huge Service is cut
// at the same place on both paths and its rules stay small.
const MaxEndpoints = haproxy.MaxServers

// Forward is one VIP:port/protocol forwarded to endpoints.
type Forward struct {
	// VIP, Proto and Port are what clients send to; they identify the
	// Forward.
	VIP   netip.Addr
	Proto Proto
	Port  uint16
	// Owner is the Service, "namespace/name".
	Owner string
	// Endpoints take new flows (sorted, unique, the VIP's family); empty:
	// new flows are rejected.
	Endpoints []netip.AddrPort
	// Draining are serving but terminating endpoints that are not in
	// Endpoints: they take no new flow, but their established flows are
	// kept (sorted, unique).
	Draining []netip.AddrPort
	// Restricted is set when the Service has loadBalancerSourceRanges:
	// then only sources in Sources (the VIP's family, masked) are admitted.
	Restricted bool
	Sources    []netip.Prefix
}

// key identifies a Forward.
type key struct {
	vip   netip.Addr
	proto Proto
	port  uint16
}

func (f Forward) key() key { return key{f.VIP, f.Proto, f.Port} }

// compareForwards orders Forwards by VIP, protocol and port (the order
// rules are written in).
func compareForwards(a, b Forward) int {
	return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
}

// equal reports whether a and b forward the same way.
func (f Forward) equal(g Forward) bool {
	return f.key() == g.key() && f.Owner == g.Owner && f.Restricted == g.Restricted &&
		slices.Equal(f.Endpoints, g.Endpoints) && slices.Equal(f.Draining, g.Draining) && slices.Equal(f.Sources, g.Sources)
}

// sameForwards reports whether a and b (both sorted) are the same set.
func sameForwards(a, b []Forward) bool {
	return slices.EqualFunc(a, b, Forward.equal)
}

// Input is everything Build reads.
type Input struct {
	// Services, Slices and Nodes are the cached objects (read-only).
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	Nodes    []*corev1.Node
	// Lookup returns a Service's raft allocation by "namespace/name".
	Lookup func(key string) (lbpool.Allocation, bool)
	// NodePort makes nodeport the default backend mode (edged.yaml's
	// haproxy.backendMode); a Service's edge.goldentooth.net/backend
	// annotation overrides it.
	NodePort bool
}

// Build returns the Forwards of every UDP and SCTP port of every allocated
// LoadBalancer Service (sorted by VIP, protocol, port), and a Problem for
// everything it left out. It does not look at leases: the caller keeps
// the Forwards of the VIPs it holds (Held).
func Build(in Input) ([]Forward, []Problem) {
	b := &builder{in: in, bySvc: slicesByService(in.Slices), taken: map[key]string{}}
	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, svc := range svcs {
		b.service(svc)
	}
	slices.SortFunc(b.out, compareForwards)
	return b.out, b.problems
}

// Held returns the Forwards whose VIP is in leased (sorted), keeping
// their order.
func Held(all []Forward, leased []netip.Addr) []Forward {
	var out []Forward
	for _, f := range all {
		if _, ok := slices.BinarySearchFunc(leased, f.VIP, netip.Addr.Compare); ok {
			out = append(out, f)
		}
	}
	return out
}

type builder struct {
	in       Input
	bySvc    map[string][]*discoveryv1.EndpointSlice
	nodes    []nodeAddrs // parsed on first use
	nodesOK  bool
	taken    map[key]string
	out      []Forward
	problems []Problem
}

func (b *builder) problem(kind, k, reason string, err error) {
	b.problems = append(b.problems, Problem{Kind: kind, Key: k, Reason: reason, Err: err})
}

// service adds the Forwards of one Service.
func (b *builder) service(svc *corev1.Service) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !hasForwardedPort(svc) {
		return
	}
	k := cache.MetaObjectToName(svc).String()
	alloc, ok := b.in.Lookup(k)
	if !ok || len(alloc.IPs) == 0 {
		return
	}
	nodePort, err := backendMode(svc.Annotations, b.in.NodePort)
	if err != nil {
		b.problem(KindService, k, ReasonInvalidAnnotation, err)
		return
	}
	sources, err := lbconfig.SourceRanges(svc)
	restricted := sources != nil || err != nil
	if err != nil {
		// HAProxy leaves the whole Service out; here its ports admit nobody.
		b.problem(KindService, k, ReasonInvalidSourceRange, fmt.Errorf("%w; its UDP/SCTP ports admit no source until it is fixed", err))
		sources = nil
	}
	bad := &lbconfig.RefusedAddrs{}
	for _, p := range svc.Spec.Ports {
		proto, ok := protoOf(p.Protocol)
		if !ok {
			continue
		}
		if p.Port <= 0 || p.Port > 65535 {
			b.problem(KindService, k, ReasonInvalidPort, fmt.Errorf("port %d/%s is out of range", p.Port, proto))
			continue
		}
		if !granted(alloc, p.Port, proto) {
			b.problem(KindService, k, ReasonPortNotAllocated, fmt.Errorf("port %d/%s is not part of the allocation of %v (the change was refused; see the AllocationFailed Event), so it is not forwarded", p.Port, proto, alloc.IPs))
			continue
		}
		var ready, draining []netip.AddrPort
		if nodePort {
			if p.NodePort <= 0 || p.NodePort > 65535 {
				b.problem(KindService, k, ReasonNoNodePort, fmt.Errorf("port %d/%s has no usable NodePort (%d) and the backend is nodeport, so it is not forwarded", p.Port, proto, p.NodePort))
				continue
			}
			ready = b.nodeTargets(svc, k, p, proto)
		} else {
			ready, draining = endpointTargets(b.bySvc[k], p, proto, bad)
		}
		for _, vip := range alloc.IPs {
			b.add(k, Forward{VIP: vip, Proto: proto, Port: uint16(p.Port), Owner: k,
				Endpoints: sameFamily(ready, vip), Draining: sameFamily(draining, vip),
				Restricted: restricted, Sources: prefixesOf(sources, vip)})
		}
	}
	if bad.Len() > 0 {
		b.problem(KindService, k, ReasonInvalidEndpoint, fmt.Errorf("%d endpoint addresses left out of UDP/SCTP forwarding, e.g. %v", bad.Len(), bad.First()))
	}
}

// add records f unless another Service holds its VIP:port, and cuts it to
// MaxEndpoints.
func (b *builder) add(k string, f Forward) {
	if other, ok := b.taken[f.key()]; ok {
		b.problem(KindService, k, ReasonPortNotAllocated, fmt.Errorf("%v/%s is forwarded for %s", netip.AddrPortFrom(f.VIP, f.Port), f.Proto, other))
		return
	}
	b.taken[f.key()] = k
	// Ready endpoints take new flows; serving-terminating ones only when
	// none is ready (kube-proxy's rule); either way their flows are kept.
	if len(f.Endpoints) == 0 {
		f.Endpoints, f.Draining = f.Draining, nil
	}
	if len(f.Endpoints) > MaxEndpoints {
		b.problem(KindService, k, ReasonTooManyEndpoints, fmt.Errorf("%v/%s has %d endpoints; only the first %d (by address) are forwarded to",
			netip.AddrPortFrom(f.VIP, f.Port), f.Proto, len(f.Endpoints), MaxEndpoints))
		f.Endpoints = f.Endpoints[:MaxEndpoints]
	}
	if len(f.Draining) > MaxEndpoints {
		f.Draining = f.Draining[:MaxEndpoints]
	}
	b.out = append(b.out, f)
}

// hasForwardedPort reports whether svc has a UDP or SCTP port.
func hasForwardedPort(svc *corev1.Service) bool {
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		_, ok := protoOf(p.Protocol)
		return ok
	})
}

// backendMode reads only edge.goldentooth.net/backend, so an annotation
// that concerns HAProxy alone (and that the HAProxy part reports) never
// stops UDP forwarding.
func backendMode(ann map[string]string, nodePort bool) (bool, error) {
	v, ok := ann[lbconfig.AnnBackend]
	switch {
	case !ok:
		return nodePort, nil
	case v == lbconfig.BackendEndpoints:
		return false, nil
	case v == lbconfig.BackendNodePort:
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want %s or %s; its UDP/SCTP ports are not forwarded", lbconfig.AnnBackend, clip(v), lbconfig.BackendEndpoints, lbconfig.BackendNodePort)
}

// granted reports whether the allocation holds port/proto.
func granted(alloc lbpool.Allocation, port int32, proto Proto) bool {
	return slices.ContainsFunc(alloc.Ports, func(g lbpool.Port) bool {
		return g.Port == port && g.Protocol == proto.String()
	})
}

// slicesByService indexes EndpointSlices by "namespace/service name".
func slicesByService(all []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := make(map[string][]*discoveryv1.EndpointSlice)
	for _, es := range all {
		if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
			k := cache.NewObjectName(es.Namespace, name).String()
			out[k] = append(out[k], es)
		}
	}
	return out
}

// sameFamily returns the targets of vip's family.
func sameFamily(all []netip.AddrPort, vip netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, t := range all {
		if t.Addr().Is4() == vip.Is4() {
			out = append(out, t)
		}
	}
	return out
}

// prefixesOf returns the prefixes of vip's family.
func prefixesOf(all []netip.Prefix, vip netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range all {
		if p.Addr().Is4() == vip.Is4() {
			out = append(out, p)
		}
	}
	return out
}

// sortTargets sorts and deduplicates targets.
func sortTargets(ts []netip.AddrPort) []netip.AddrPort {
	slices.SortFunc(ts, netip.AddrPort.Compare)
	return slices.Compact(ts)
}
