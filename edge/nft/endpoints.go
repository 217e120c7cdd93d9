package nft

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/goldentooth/edged/edge/lbconfig"
)

// endpointTargets returns, for one Service port, its ready endpoints and
// its serving-but-terminating ones (lbconfig.Endpoints' rule; each sorted,
// each address once, an address ready anywhere counted ready).
func endpointTargets(eps []*discoveryv1.EndpointSlice, p corev1.ServicePort, proto Proto, bad *lbconfig.RefusedAddrs) (ready, draining []netip.AddrPort) {
	for _, e := range lbconfig.Endpoints(eps, p.Name, proto.protocol(), bad) {
		if e.Draining {
			draining = append(draining, e.Addr)
		} else {
			ready = append(ready, e.Addr)
		}
	}
	ready = sortTargets(ready)
	draining = sortTargets(draining)
	kept := draining[:0]
	for _, t := range draining {
		if !containsTarget(ready, t) {
			kept = append(kept, t)
		}
	}
	return ready, kept
}

func containsTarget(sorted []netip.AddrPort, t netip.AddrPort) bool {
	for _, s := range sorted {
		if s == t {
			return true
		}
	}
	return false
}

// nodeAddrs is one Node's usable InternalIPs.
type nodeAddrs struct {
	name string
	ips  []netip.Addr
}

// nodeTargets returns every Node's InternalIPs at p's NodePort; with
// externalTrafficPolicy Local, only the Nodes that run a ready or serving
// endpoint of the Service (by the endpoints' nodeName), because any other
// Node drops the traffic.
func (b *builder) nodeTargets(svc *corev1.Service, k string, p corev1.ServicePort, proto Proto) []netip.AddrPort {
	if !b.nodesOK {
		b.nodes, b.nodesOK = b.parseNodes(), true
	}
	var local map[string]bool
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		local = endpointNodes(b.bySvc[k])
	}
	var out []netip.AddrPort
	for _, n := range b.nodes {
		if local != nil && !local[n.name] {
			continue
		}
		for _, ip := range n.ips {
			out = append(out, netip.AddrPortFrom(ip, uint16(p.NodePort)))
		}
	}
	return sortTargets(out)
}

// endpointNodes names the Nodes that run a ready or serving endpoint.
func endpointNodes(eps []*discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, es := range eps {
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			if (c.Ready == nil || *c.Ready || (c.Serving != nil && *c.Serving)) && ep.NodeName != nil {
				out[*ep.NodeName] = true
			}
		}
	}
	return out
}

// parseNodes reads every Node's InternalIPs; a Node with a refused
// address is reported once.
func (b *builder) parseNodes() []nodeAddrs {
	var out []nodeAddrs
	for _, n := range b.in.Nodes {
		var bad lbconfig.RefusedAddrs
		na := nodeAddrs{name: n.Name, ips: lbconfig.NodeInternalIPs(n, &bad)}
		if bad.Len() > 0 {
			b.problem(KindNode, n.Name, ReasonInvalidEndpoint, fmt.Errorf("%d InternalIP addresses left out of nodeport UDP/SCTP forwarding, e.g. %v", bad.Len(), bad.First()))
		}
		out = append(out, na)
	}
	return out
}

// maxQuoted bounds how much of an untrusted value a message quotes.
const maxQuoted = 64

// clip shortens an untrusted value for a message (quoted with %q by the
// caller, so it is safe to log and to put in an Event).
func clip(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}
