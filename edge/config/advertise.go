package config

import (
	"slices"

	"github.com/goldentooth/edged/lbpool"
)

// The rules of MetalLB's L2Advertisement live here, each once, as pure
// methods: which pools an advertisement announces, on which interfaces,
// from which hosts. `edged validate` (Summary), the eligibility map in the
// raft state and the announcer's lease scope (edge/l2) all read them.
// A static VIP's pool (staticVIPs) is announced by its own entry instead
// of any advertisement: on its interfaces, from its nodes.

// Selects reports whether ad announces p: ad names p, one of its selectors
// matches p's labels, or ad names and selects nothing (MetalLB: all pools).
func (ad L2Advertisement) Selects(p Pool) bool {
	if len(ad.IPAddressPools) == 0 && len(ad.IPAddressPoolSelectors) == 0 {
		return true
	}
	if slices.Contains(ad.IPAddressPools, p.Name) {
		return true
	}
	for _, s := range ad.IPAddressPoolSelectors {
		sel := lbpool.Selector{MatchLabels: s.MatchLabels}
		for _, r := range s.MatchExpressions {
			sel.MatchExpressions = append(sel.MatchExpressions, lbpool.SelectorRequirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
		}
		if sel.Matches(p.Labels) {
			return true
		}
	}
	return false
}

// Allows reports whether ad lets the edge host node announce: an
// advertisement without nodes lets every host.
func (ad L2Advertisement) Allows(node string) bool {
	return len(ad.Nodes) == 0 || slices.Contains(ad.Nodes, node)
}

// AdvertisementsFor returns the advertisements that announce the pool
// named pool, in config order; none when no pool has that name.
func (c *Config) AdvertisementsFor(pool string) []L2Advertisement {
	i := slices.IndexFunc(c.Pools, func(p Pool) bool { return p.Name == pool })
	if i < 0 {
		return nil
	}
	var out []L2Advertisement
	for _, ad := range c.L2Advertisements {
		if ad.Selects(c.Pools[i]) {
			out = append(out, ad)
		}
	}
	return out
}

// InterfacesOf returns the interfaces ad announces on: its own, else
// announce.interfaces; nil means every interface the host serves.
func (c *Config) InterfacesOf(ad L2Advertisement) []string {
	if len(ad.Interfaces) > 0 {
		return ad.Interfaces
	}
	return c.Announce.Interfaces
}

// PoolInterfaces returns the interfaces this host (node.name) announces
// the pool named pool on: the union over the advertisements of the pool
// that allow this host, nil meaning every served interface. ok is false
// when none allows it, so this host must not announce the pool at all.
// A static VIP's pool is announced on the VIP's interfaces, when its nodes
// allow this host.
func (c *Config) PoolInterfaces(pool string) (ifaces []string, ok bool) {
	if v, static := c.staticVIP(pool); static {
		return slices.Clone(c.staticInterfaces(v)), v.allows(c.Node.Name)
	}
	for _, ad := range c.AdvertisementsFor(pool) {
		if !ad.Allows(c.Node.Name) {
			continue
		}
		ifs := c.InterfacesOf(ad)
		switch {
		case !ok:
			ifaces, ok = slices.Clone(ifs), true
		case ifaces == nil || ifs == nil:
			ifaces = nil
		default:
			ifaces = union(ifaces, ifs...)
		}
	}
	return ifaces, ok
}

// Eligibility lists, per pool, the hosts its advertisements allow to
// announce it. A pool announced by any advertisement without a nodes list
// may be announced by every host, and is left out of the map, as is a pool
// no advertisement announces. A static VIP's pool lists the VIP's nodes
// (left out when it has none: every host).
func (c *Config) Eligibility() map[string][]string {
	out := map[string][]string{}
	for _, v := range c.StaticVIPs {
		if len(v.Nodes) > 0 {
			out[lbpool.StaticKey(v.Name)] = slices.Clone(v.Nodes)
		}
	}
	for _, p := range c.Pools {
		var hosts []string
		all := false
		for _, ad := range c.AdvertisementsFor(p.Name) {
			if len(ad.Nodes) == 0 {
				all = true
				break
			}
			hosts = append(hosts, ad.Nodes...)
		}
		if !all && len(hosts) > 0 {
			out[p.Name] = hosts
		}
	}
	return out
}

// AdvertisedInterfaces is the union of the interfaces the advertisements
// announce on, for any host (announce.interfaces when there is no
// advertisement), then those of the static VIPs, in first-seen order. all
// is true when an advertisement or a static VIP (or, without any
// advertisement, an empty announce.interfaces) means every interface.
func (c *Config) AdvertisedInterfaces() (names []string, all bool) {
	all = len(c.L2Advertisements) == 0 && len(c.Announce.Interfaces) == 0
	for _, ad := range c.L2Advertisements {
		ifs := c.InterfacesOf(ad)
		all = all || len(ifs) == 0
		names = union(names, ifs...)
	}
	if len(c.L2Advertisements) == 0 {
		names = append(names, c.Announce.Interfaces...)
	}
	for _, v := range c.StaticVIPs {
		ifs := c.staticInterfaces(v)
		all = all || len(ifs) == 0
		names = union(names, ifs...)
	}
	return names, all
}

// HostInterfaces is base plus every interface an advertisement or a static
// VIP that allows this host (node.name) names itself, in first-seen order.
func (c *Config) HostInterfaces(base []string) []string {
	out := slices.Clone(base)
	for _, ad := range c.L2Advertisements {
		if ad.Allows(c.Node.Name) {
			out = union(out, ad.Interfaces...)
		}
	}
	for _, v := range c.StaticVIPs {
		if v.allows(c.Node.Name) {
			out = union(out, v.Interfaces...)
		}
	}
	return out
}

// union appends to dst each of names it does not hold yet.
func union(dst []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(dst, n) {
			dst = append(dst, n)
		}
	}
	return dst
}
