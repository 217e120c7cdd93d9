package nft

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/goldentooth/edged/lbpool"
)

// endpointTargets returns, for one Service port, its ready endpoints and
// its serving-but-terminating ones (each sorted, each address once).
// Like kube-proxy it uses each endpoint's first address; a refused one is
// counted in bad.
func endpointTargets(eps []*discoveryv1.EndpointSlice, p corev1.ServicePort, proto Proto, bad *badAddrs) (ready, draining []netip.AddrPort) {
	for _, es := range eps {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN slices name no address to forward to
		}
		port := slicePort(es, p.Name, proto)
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			isReady := c.Ready == nil || *c.Ready
			isDraining := !isReady && c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
			if (!isReady && !isDraining) || len(ep.Addresses) == 0 {
				continue
			}
			ip, err := lbpool.ParseUnicast(ep.Addresses[0])
			if err != nil {
				bad.add(ep.Addresses[0], err)
				continue
			}
			t := netip.AddrPortFrom(ip, port)
			if isReady {
				ready = append(ready, t)
			} else {
				draining = append(draining, t)
			}
		}
	}
	ready = sortTargets(ready)
	// An address both ready (in one slice) and draining (in another) is
	// ready.
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

// slicePort finds the slice port for a Service port: the same name (as
// the EndpointSlice controller names them) and protocol, in range.
func slicePort(es *discoveryv1.EndpointSlice, name string, proto Proto) uint16 {
	for _, sp := range es.Ports {
		n := ""
		if sp.Name != nil {
			n = *sp.Name
		}
		pr := corev1.ProtocolTCP
		if sp.Protocol != nil {
			pr = *sp.Protocol
		}
		if got, ok := protoOf(pr); !ok || got != proto || n != name {
			continue
		}
		if sp.Port != nil && *sp.Port > 0 && *sp.Port < 65536 {
			return uint16(*sp.Port)
		}
	}
	return 0
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
		na := nodeAddrs{name: n.Name}
		var bad badAddrs
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			ip, err := lbpool.ParseUnicast(a.Address)
			if err != nil {
				bad.add(a.Address, err)
				continue
			}
			na.ips = append(na.ips, ip)
		}
		if len(bad.seen) > 0 {
			b.problem(KindNode, n.Name, ReasonInvalidEndpoint, fmt.Errorf("%d InternalIP addresses left out of nodeport UDP/SCTP forwarding, e.g. %v", len(bad.seen), bad.first))
		}
		out = append(out, na)
	}
	return out
}

// maxRanges bounds loadBalancerSourceRanges: each range is one rule on
// every packet to the port, and the API server itself sets no bound.
const maxRanges = 256

// sourceRanges parses spec.loadBalancerSourceRanges. restricted is true
// whenever the field is set, even if no entry is usable (then nobody is
// admitted: a typo must not open the port to every source).
func (b *builder) sourceRanges(k string, field []string) (restricted bool, out []netip.Prefix) {
	if len(field) == 0 {
		return false, nil
	}
	var bad []string
	for i, s := range field {
		if i >= maxRanges {
			bad = append(bad, fmt.Sprintf("%d more beyond the first %d", len(field)-maxRanges, maxRanges))
			break
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || p.Addr().Is4In6() {
			bad = append(bad, fmt.Sprintf("%q", clip(s)))
			continue
		}
		out = append(out, p.Masked())
	}
	if len(bad) > 0 {
		b.problem(KindService, k, ReasonInvalidSourceRange, fmt.Errorf("loadBalancerSourceRanges entries left out (fewer sources are admitted, never more): %s", strings.Join(bad, ", ")))
	}
	return true, out
}

// badAddrs collects refused addresses for one Problem; an address met
// again counts once.
type badAddrs struct {
	seen  map[string]bool
	first error
}

func (b *badAddrs) add(addr string, err error) {
	if b.seen == nil {
		b.seen, b.first = map[string]bool{}, err
	}
	b.seen[addr] = true
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
