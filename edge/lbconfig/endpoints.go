package lbconfig

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/goldentooth/edged/lbpool"
)

// Endpoint is one address of a Service port that may receive traffic.
type Endpoint struct {
	Addr netip.AddrPort
	// Draining: terminating but still serving. HAProxy keeps it as a
	// drained server, nftables uses it only while nothing is ready.
	Draining bool
}

// RefusedAddrs collects the endpoint addresses Endpoints refused, each
// once, with the first error, for one Event per Service. The zero value is
// ready to use.
type RefusedAddrs struct {
	seen  map[string]bool
	first error
}

// Add records addr, refused with err.
func (r *RefusedAddrs) Add(addr string, err error) {
	if r.seen == nil {
		r.seen, r.first = map[string]bool{}, err
	}
	r.seen[addr] = true
}

// Len is the number of distinct refused addresses.
func (r *RefusedAddrs) Len() int { return len(r.seen) }

// First is the error of the first refused address (nil when none).
func (r *RefusedAddrs) First() error { return r.first }

// NodeInternalIPs is edged's one reading of a Node's addresses, shared by
// HAProxy's nodeport backends and nftables' nodeport forwards: its
// InternalIPs that are plain unicast addresses (lbpool.ParseUnicast: no
// zone, no mapped or odd form); every other InternalIP is recorded in
// refused.
func NodeInternalIPs(n *corev1.Node, refused *RefusedAddrs) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := lbpool.ParseUnicast(a.Address)
		if err != nil {
			refused.Add(a.Address, err)
			continue
		}
		out = append(out, ip)
	}
	return out
}

// Endpoints is edged's one rule, kube-proxy's, for which endpoints of a
// Service port receive traffic, shared by HAProxy's backends (TCP) and the
// nftables forwards (UDP, SCTP). In every EndpointSlice it takes the slice
// port with the Service port's name and protocol (TCP when unset) and a
// number in 1-65535; of each endpoint that is ready (unset counts as
// ready) or serving and terminating (Draining), the first address, which
// must pass lbpool.ParseUnicast: a refused one (loopback, link-local,
// mapped, zoned, or an FQDN slice's name) is added to refused and left
// out. Endpoints may repeat across slices; callers sort and dedupe.
func Endpoints(eps []*discoveryv1.EndpointSlice, name string, proto corev1.Protocol, refused *RefusedAddrs) []Endpoint {
	var out []Endpoint
	for _, es := range eps {
		port := slicePort(es, name, proto)
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			ready := c.Ready == nil || *c.Ready
			draining := !ready && c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
			if (!ready && !draining) || len(ep.Addresses) == 0 {
				continue
			}
			ip, err := lbpool.ParseUnicast(ep.Addresses[0])
			if err != nil {
				refused.Add(ep.Addresses[0], err)
				continue
			}
			out = append(out, Endpoint{Addr: netip.AddrPortFrom(ip, port), Draining: draining})
		}
	}
	return out
}

// slicePort finds the slice port for a Service port: the same name (as the
// EndpointSlice controller names them) and protocol, in range.
func slicePort(es *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) uint16 {
	for _, sp := range es.Ports {
		n := ""
		if sp.Name != nil {
			n = *sp.Name
		}
		pr := corev1.ProtocolTCP
		if sp.Protocol != nil {
			pr = *sp.Protocol
		}
		if n == name && pr == proto && sp.Port != nil && *sp.Port > 0 && *sp.Port < 65536 {
			return uint16(*sp.Port)
		}
	}
	return 0
}
