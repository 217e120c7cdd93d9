package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/goldentooth/edged/lbpool"
)

// StaticVIP is one of the operator's own VIPs (staticVIPs): an address for
// frontends of the operator's haproxy.cfg (the stats page, the Kubernetes
// API), announced by one edge host at a time under the same raft lease
// fencing as a Service's address. It becomes a pool of its own
// (lbpool.StaticPool) that the leader allocates to it (edge).
type StaticVIP struct {
	// Name identifies the VIP in `edged status` and in the raft state
	// (lbpool.StaticKey); a DNS label.
	Name string `yaml:"name"`
	// Address is the VIP, outside every pool.
	Address string `yaml:"address"`
	// Interfaces it is announced on; empty: announce.interfaces, else
	// every interface the host serves.
	Interfaces []string `yaml:"interfaces"`
	// Nodes are the edge hosts (node.name) that may announce it; empty: all.
	Nodes []string `yaml:"nodes"`
	// HealthCheck is refused for now (see checkStaticVIPs); the key exists
	// so that setting it gets an error that says so, not "unknown key".
	HealthCheck *StaticHealthCheck `yaml:"healthCheck"`
}

// StaticHealthCheck is a per-VIP health check. Not implemented: edged
// refuses a config that sets one.
type StaticHealthCheck struct {
	TCP string `yaml:"tcp"`
}

// staticName is a DNS label (RFC 1123), lower case, as Kubernetes names
// are: it shows in `edged status`, logs and metric labels.
var staticName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkStaticVIPs checks every staticVIPs entry against the pools already
// converted into LBPools (those of the file, its manifests and, through
// WithObjects, the cluster's MetalLB objects).
func (l *loaded) checkStaticVIPs() error {
	c := l.cfg
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, v := range c.StaticVIPs {
		src := source{file: c.Path, node: locate(l.root, "staticVIPs", i), path: fmt.Sprintf("staticVIPs[%d]", i)}
		if !staticName.MatchString(v.Name) {
			return l.failAt(src, []any{"name"}, ".name", "%q: want a DNS label (a-z, 0-9 and '-', at most 63, starting and ending with a letter or digit)", v.Name)
		}
		if j, dup := names[v.Name]; dup {
			return l.failAt(src, []any{"name"}, ".name", "%q is also the name of staticVIPs[%d]: names must be unique", v.Name, j)
		}
		names[v.Name] = i
		a, err := lbpool.ParseUnicast(v.Address)
		if err != nil {
			return l.failAt(src, []any{"address"}, ".address", "%v: want this VIP's one address, like 10.4.10.5", err)
		}
		if j, dup := addrs[a]; dup {
			return l.failAt(src, []any{"address"}, ".address", "%s is also the address of staticVIPs[%d]: one address, one static VIP", a, j)
		}
		addrs[a] = i
		if err := l.outsidePools(src, a); err != nil {
			return err
		}
		if err := l.checkPlaces(src, v.Interfaces, v.Nodes); err != nil {
			return err
		}
		if v.HealthCheck != nil {
			return l.failAt(src, []any{"healthCheck"}, ".healthCheck",
				"per-VIP health checks are not supported yet: remove healthCheck. A host whose HAProxy fails its health probe (health.haproxy) already gives up every VIP it holds, static ones included")
		}
	}
	return nil
}

// outsidePools refuses a static address inside a Service pool: lbpool
// would refuse the overlap, and a Service could hold the address.
func (l *loaded) outsidePools(src source, a netip.Addr) error {
	for i, p := range l.cfg.LBPools {
		for _, r := range p.Ranges {
			if !r.Contains(a) {
				continue
			}
			where := ""
			if i < len(l.pools) {
				where = fmt.Sprintf(" (%s in %s)", l.pools[i].path, l.pools[i].file)
			}
			return l.failAt(src, []any{"address"}, ".address", "%s is inside pool %q%s: a static VIP needs an address no pool hands out", a, p.Name, where)
		}
	}
	return nil
}

// StaticPools returns the pool of every static VIP, in config order
// (lbpool.StaticPool); Load appends them to LBPools.
func (c *Config) StaticPools() []lbpool.Pool {
	out := make([]lbpool.Pool, 0, len(c.StaticVIPs))
	for _, v := range c.StaticVIPs {
		if a, err := netip.ParseAddr(v.Address); err == nil { // validated: always
			out = append(out, lbpool.StaticPool(v.Name, a))
		}
	}
	return out
}

// staticVIP returns the static VIP whose pool is named pool.
func (c *Config) staticVIP(pool string) (StaticVIP, bool) {
	name, ok := lbpool.StaticName(pool)
	if !ok {
		return StaticVIP{}, false
	}
	i := slices.IndexFunc(c.StaticVIPs, func(v StaticVIP) bool { return v.Name == name })
	if i < 0 {
		return StaticVIP{}, false
	}
	return c.StaticVIPs[i], true
}

// staticInterfaces returns the interfaces v is announced on: its own, else
// announce.interfaces; nil means every interface the host serves.
func (c *Config) staticInterfaces(v StaticVIP) []string {
	return ownOr(v.Interfaces, c.Announce.Interfaces)
}

// allows reports whether the edge host node may announce v.
func (v StaticVIP) allows(node string) bool {
	return len(v.Nodes) == 0 || slices.Contains(v.Nodes, node)
}
