package lbpool

import (
	"net/netip"
	"strings"
)

// Static VIPs (edged.yaml staticVIPs: the operator's own frontends) ride the
// Services' machinery: each is an allocation in a pool of its own, so raft
// assigns, leases and fences it exactly as it does a Service's address. The
// names below keep the two apart:
//   - the pool name and the allocation key of a static VIP both start with
//     StaticPrefix. A Service's key is "namespace/name" and MetalLB's pool
//     names are Kubernetes object names, none of which may contain ':', so
//     neither can ever equal a static one (edged.yaml refuses the prefix);
//   - a static pool never auto-assigns and serves only staticNamespace,
//     which no Kubernetes namespace can be: a Service that asks for the pool
//     or for its address by name is refused with ErrNotEligible.

// StaticPrefix starts the pool name and the allocation key of every static
// VIP.
const StaticPrefix = "edged-static:"

// staticNamespace is the only namespace a static pool serves; Kubernetes
// namespaces are DNS labels and never contain ':'.
const staticNamespace = StaticPrefix

// StaticKey is the allocation key, and the pool name, of the static VIP
// called name.
func StaticKey(name string) string { return StaticPrefix + name }

// IsStatic reports whether a pool name or allocation key is a static VIP's.
func IsStatic(keyOrPool string) bool { return strings.HasPrefix(keyOrPool, StaticPrefix) }

// StaticName is the static VIP name of a static key or pool name; ok is
// false for any other.
func StaticName(keyOrPool string) (name string, ok bool) {
	if name, ok = strings.CutPrefix(keyOrPool, StaticPrefix); !ok {
		return "", false
	}
	return name, true
}

// StaticPool is the pool of the static VIP called name: addr alone, never
// handed out automatically, serving no Service.
func StaticPool(name string, addr netip.Addr) Pool {
	return Pool{Name: StaticKey(name), Ranges: []Range{{First: addr, Last: addr}},
		Allocation: &ServiceAllocation{Namespaces: []string{staticNamespace}}}
}

// StaticRequests returns, in order, the request that allocates each static
// pool's address to its static VIP: the pools are the one description of
// the static VIPs, so the allocations follow exactly the pools in force.
// Pools that are not static are skipped.
func StaticRequests(pools []Pool) []Request {
	var out []Request
	for _, p := range pools {
		if !IsStatic(p.Name) || len(p.Ranges) == 0 {
			continue
		}
		out = append(out, Request{Key: p.Name, Namespace: staticNamespace, Pool: p.Name,
			IPs: []netip.Addr{p.Ranges[0].First}})
	}
	return out
}
