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

// Serves reports whether ad announces an IP held by Services with the given
// labels (one map per Service; more than one for a shared IP): always
// without serviceSelectors, else when one of them matches one Service's
// labels (MetalLB's l2AdsForService; MetalLB refuses to announce a shared
// IP under serviceSelectors, edged announces it where any of its Services'
// advertisements say).
func (ad L2Advertisement) Serves(services []map[string]string) bool {
	if len(ad.ServiceSelectors) == 0 {
		return true
	}
	for _, s := range ad.ServiceSelectors {
		sel := s.selector()
		for _, labels := range services {
			if sel.Matches(labels) {
				return true
			}
		}
	}
	return false
}

// selector converts s for matching (config validation has checked it).
func (s LabelSelector) selector() lbpool.Selector {
	sel := lbpool.Selector{MatchLabels: s.MatchLabels}
	for _, r := range s.MatchExpressions {
		sel.MatchExpressions = append(sel.MatchExpressions, lbpool.SelectorRequirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
	}
	return sel
}

// Selective reports whether some advertisement has serviceSelectors: only
// then does an IP's announce scope depend on its Services' labels.
func (c *Config) Selective() bool {
	return slices.ContainsFunc(c.L2Advertisements, func(ad L2Advertisement) bool { return len(ad.ServiceSelectors) > 0 })
}

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
		if s.selector().Matches(p.Labels) {
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
	return ownOr(ad.Interfaces, c.Announce.Interfaces)
}

// ownOr is an advertisement's or a static VIP's own interfaces, else the
// host's (announce.interfaces; nil meaning every served interface).
func ownOr(own, host []string) []string {
	if len(own) > 0 {
		return own
	}
	return host
}

// PoolInterfaces returns the interfaces this host (node.name) announces an
// IP of the pool named pool on, when Services with the labels services
// hold it: the union over the advertisements of the pool that serve those
// Services and allow this host, nil meaning every served interface. ok is
// false when none does, so this host must not announce the IP at all. A
// static VIP's pool is announced on the VIP's interfaces, when its nodes
// allow this host.
func (c *Config) PoolInterfaces(pool string, services []map[string]string) (ifaces []string, ok bool) {
	return c.PoolInterfacesOf(c.Node.Name, c.Announce.Interfaces, pool, services)
}

// PoolInterfacesOf is PoolInterfaces as edge host host computes it, its
// announce.interfaces being hostIfaces: what this host's config says of
// another host (the Kubernetes announcer reports every host's interfaces).
func (c *Config) PoolInterfacesOf(host string, hostIfaces []string, pool string, services []map[string]string) (ifaces []string, ok bool) {
	if v, static := c.staticVIP(pool); static {
		return slices.Clone(ownOr(v.Interfaces, hostIfaces)), v.allows(host)
	}
	for _, ad := range c.AdvertisementsFor(pool) {
		if !ad.Allows(host) || !ad.Serves(services) {
			continue
		}
		ifs := ownOr(ad.Interfaces, hostIfaces)
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
// no advertisement announces. It is per pool, not per Service: raft picks
// an IP's announcer from it without the Service's labels, so validation
// refuses serviceSelectors that would narrow the hosts for some Services
// (checkSelectiveHosts). A static VIP's pool lists the VIP's nodes (left
// out when it has none: every host).
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

// hostSet is a set of edge hosts; all means every host.
type hostSet struct {
	all   bool
	hosts []string
}

func (h hostSet) add(ad L2Advertisement) hostSet {
	if h.all || len(ad.Nodes) == 0 {
		return hostSet{all: true}
	}
	h.hosts = union(slices.Clone(h.hosts), ad.Nodes...)
	return h
}

// within reports whether every host of h is in o.
func (h hostSet) within(o hostSet) bool {
	if o.all || h.all {
		return o.all
	}
	return !slices.ContainsFunc(h.hosts, func(n string) bool { return !slices.Contains(o.hosts, n) })
}

// selectiveHostsConflict returns the index (in c.L2Advertisements) of an
// advertisement with serviceSelectors that would change which hosts may
// announce an IP of pool for some Services, or -1. raft chooses an IP's
// announcer among the pool's hosts (Eligibility) without the Service's
// labels; a Service must find that host allowed by the advertisements that
// serve it, or the chosen host stays silent. That holds when the pool's
// advertisements without serviceSelectors allow every host the others do,
// or, with none, when all of them allow the same hosts.
func (c *Config) selectiveHostsConflict(pool Pool) int {
	var free, full hostSet
	var selective []int
	nFree := 0
	for i, ad := range c.L2Advertisements {
		if !ad.Selects(pool) {
			continue
		}
		full = full.add(ad)
		if len(ad.ServiceSelectors) > 0 {
			selective = append(selective, i)
		} else {
			free, nFree = free.add(ad), nFree+1
		}
	}
	for _, i := range selective {
		own := hostSet{}.add(c.L2Advertisements[i])
		if nFree > 0 {
			if !own.within(free) {
				return i
			}
		} else if !own.within(full) || !full.within(own) {
			return i
		}
	}
	return -1
}
