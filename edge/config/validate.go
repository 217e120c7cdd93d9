package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/goldentooth/edged/edge/metricsrv"
	"github.com/goldentooth/edged/lbpool"
)

func (l *loaded) failAt(src source, rel []any, field, format string, args ...any) error {
	n := locate(src.node, rel...)
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: src.file, Line: line, Field: src.path + field, Msg: fmt.Sprintf(format, args...)}
}

func (l *loaded) failRoot(field string, path []any, format string, args ...any) error {
	return l.failAt(source{file: l.cfg.Path, node: l.root}, path, field, format, args...)
}

// validate checks the meaning of the values and builds cfg.LBPools.
func (l *loaded) validate() error {
	c := l.cfg
	if len(c.Pools) == 0 && !c.Kubernetes.MetallbCRDs {
		return l.failRoot("pools", []any{"pools"}, "no pools: define at least one under pools or in metallbManifests, or set kubernetes.metallbCRDs: true")
	}
	c.LBPools = c.LBPools[:0]
	for i, p := range c.Pools {
		lp, err := l.convertPool(l.pools[i], p)
		if err != nil {
			return err
		}
		c.LBPools = append(c.LBPools, lp)
	}
	if err := lbpool.ValidatePools(c.LBPools); err != nil {
		var pe *lbpool.PoolError
		if errors.As(err, &pe) {
			rel, field := []any{pe.Field}, "."+pe.Field
			if pe.Item >= 0 {
				rel, field = append(rel, pe.Item), fmt.Sprintf(".%s[%d]", pe.Field, pe.Item)
			}
			return l.failAt(l.pools[pe.Pool], rel, field, "%v", pe.Err)
		}
		return err
	}
	for i, a := range c.L2Advertisements {
		if err := l.checkAdvert(l.adverts[i], a); err != nil {
			return err
		}
	}
	if err := l.checkSelectiveHosts(); err != nil {
		return err
	}
	if err := l.checkSections(); err != nil {
		return err
	}
	if err := l.checkStaticVIPs(); err != nil {
		return err
	}
	c.LBPools = append(c.LBPools, c.StaticPools()...)
	return nil
}

func (l *loaded) convertPool(src source, p Pool) (lbpool.Pool, error) {
	lp := lbpool.Pool{Name: p.Name, AutoAssign: p.AutoAssign == nil || *p.AutoAssign, AvoidBuggyIPs: p.AvoidBuggyIPs}
	if p.Name == "" {
		return lp, l.failAt(src, []any{"name"}, ".name", "a pool needs a name")
	}
	if lbpool.IsStatic(p.Name) {
		return lp, l.failAt(src, []any{"name"}, ".name", "%q: names starting with %q are reserved for staticVIPs; rename the pool", p.Name, lbpool.StaticPrefix)
	}
	if len(p.Addresses) == 0 {
		return lp, l.failAt(src, []any{"addresses"}, ".addresses", "pool %q is empty: give at least one CIDR or range like 10.4.11.0 - 10.4.15.254", p.Name)
	}
	for j, s := range p.Addresses {
		r, err := lbpool.ParseRange(s)
		if err != nil {
			return lp, l.failAt(src, []any{"addresses", j}, fmt.Sprintf(".addresses[%d]", j), "%v", err)
		}
		lp.Ranges = append(lp.Ranges, r)
	}
	if sa := p.ServiceAllocation; sa != nil {
		out := &lbpool.ServiceAllocation{Priority: sa.Priority, Namespaces: sa.Namespaces}
		var err error
		if out.NamespaceSelectors, err = l.selectors(src, "serviceAllocation", "namespaceSelectors", sa.NamespaceSelectors); err != nil {
			return lp, err
		}
		if out.ServiceSelectors, err = l.selectors(src, "serviceAllocation", "serviceSelectors", sa.ServiceSelectors); err != nil {
			return lp, err
		}
		lp.Allocation = out
	}
	return lp, nil
}

var operators = []string{"In", "NotIn", "Exists", "DoesNotExist"}

func (l *loaded) selectors(src source, parent, key string, in []LabelSelector) ([]lbpool.Selector, error) {
	out := make([]lbpool.Selector, 0, len(in))
	for i, s := range in {
		sel := lbpool.Selector{MatchLabels: s.MatchLabels}
		for j, r := range s.MatchExpressions {
			rel := []any{parent, key, i, "matchExpressions", j}
			field := fmt.Sprintf(".%s.%s[%d].matchExpressions[%d]", parent, key, i, j)
			if parent == "" { // a key of the advertisement itself
				rel, field = rel[1:], fmt.Sprintf(".%s[%d].matchExpressions[%d]", key, i, j)
			}
			if !slices.Contains(operators, r.Operator) {
				return nil, l.failAt(src, append(rel, "operator"), field+".operator", "operator %q: want one of %s", r.Operator, strings.Join(operators, ", "))
			}
			hasValues := len(r.Values) > 0
			if (r.Operator == "In" || r.Operator == "NotIn") != hasValues {
				return nil, l.failAt(src, rel, field, "operator %s %s values", r.Operator, map[bool]string{true: "needs", false: "takes no"}[r.Operator == "In" || r.Operator == "NotIn"])
			}
			sel.MatchExpressions = append(sel.MatchExpressions, lbpool.SelectorRequirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
		}
		out = append(out, sel)
	}
	return out, nil
}

func (l *loaded) checkAdvert(src source, a L2Advertisement) error {
	names := make([]string, len(l.cfg.Pools))
	for i, p := range l.cfg.Pools {
		names[i] = p.Name
	}
	for j, name := range a.IPAddressPools {
		if !slices.Contains(names, name) {
			return l.failAt(src, []any{"ipAddressPools", j}, fmt.Sprintf(".ipAddressPools[%d]", j),
				"no pool named %q (pools: %s)", name, strings.Join(names, ", "))
		}
	}
	if _, err := l.selectors(src, "", "ipAddressPoolSelectors", a.IPAddressPoolSelectors); err != nil {
		return err
	}
	if _, err := l.selectors(src, "", "serviceSelectors", a.ServiceSelectors); err != nil {
		return err
	}
	return l.checkPlaces(src, a.Interfaces, a.Nodes)
}

// checkPlaces checks the interfaces and nodes lists of an advertisement or
// a static VIP (src): Linux interface names, and hosts of raft.peers when
// peers are listed.
func (l *loaded) checkPlaces(src source, interfaces, nodes []string) error {
	for j, ifc := range interfaces {
		if !interfaceName(ifc) {
			return l.failAt(src, []any{"interfaces", j}, fmt.Sprintf(".interfaces[%d]", j), "%q is not a Linux interface name", ifc)
		}
	}
	if peers := l.cfg.Raft.Peers; len(peers) > 0 {
		for j, n := range nodes {
			if !slices.ContainsFunc(peers, func(p Peer) bool { return p.ID == n }) {
				return l.failAt(src, []any{"nodes", j}, fmt.Sprintf(".nodes[%d]", j), "%q is not one of raft.peers", n)
			}
		}
	}
	return nil
}

// interfaceName reports whether s can be a Linux interface name (IFNAMSIZ
// 16 with the NUL; no slash, whitespace or colon, as the kernel's
// dev_valid_name refuses them or iproute2 reads them as labels).
func interfaceName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ \t:")
}

func (l *loaded) checkSections() error {
	c := l.cfg
	if c.Node.Name == "" {
		return l.failRoot("node.name", []any{"node", "name"}, "empty: set the edge host's name")
	}
	seen := map[string]bool{}
	for i, p := range c.Raft.Peers {
		at := []any{"raft", "peers", i}
		field := fmt.Sprintf("raft.peers[%d]", i)
		if p.ID == "" || seen[p.ID] {
			return l.failRoot(field+".id", append(at, "id"), "peer IDs must be unique and non-empty (got %q)", p.ID)
		}
		seen[p.ID] = true
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return l.failRoot(field+".address", append(at, "address"), "%q is not host:port", p.Address)
		}
	}
	if err := l.checkNodeInPeers(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Raft.BindAddress); err != nil {
		return l.failRoot("raft.bindAddress", []any{"raft", "bindAddress"}, "%q is not host:port", c.Raft.BindAddress)
	}
	r := c.Raft
	if r.LeaseDuration <= 0 || r.HeartbeatTimeout <= 0 || r.ElectionTimeout <= 0 || r.ClockDriftMargin < 0 {
		return l.failRoot("raft", []any{"raft"}, "timings must be positive")
	}
	if r.HeartbeatTimeout < MinHeartbeatTimeout {
		return l.failRoot("raft.heartbeatTimeout", []any{"raft", "heartbeatTimeout"},
			"%v is below %v (hashicorp/raft needs 5 ms for its leader lease, which edged keeps 1 ms below heartbeatTimeout)", r.HeartbeatTimeout, MinHeartbeatTimeout)
	}
	if r.LeaseDuration > 2*r.HeartbeatTimeout {
		return l.failRoot("raft.leaseDuration", []any{"raft", "leaseDuration"},
			"%v is longer than twice heartbeatTimeout %v", r.LeaseDuration, r.HeartbeatTimeout)
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		return l.failRoot("raft.electionTimeout", []any{"raft", "electionTimeout"},
			"%v is shorter than heartbeatTimeout %v (hashicorp/raft refuses that)", r.ElectionTimeout, r.HeartbeatTimeout)
	}
	if !r.InsecurePlaintext && len(r.Peers) > 0 && (r.TLS.CertFile == "" || r.TLS.KeyFile == "" || r.TLS.CAFile == "") {
		return l.failRoot("raft.tls", []any{"raft", "tls"}, "certFile, keyFile and caFile are required (or set insecurePlaintext: true for a lab)")
	}
	if m := c.Kubernetes.IPMode; m != "VIP" && m != "Proxy" {
		return l.failRoot("kubernetes.ipMode", []any{"kubernetes", "ipMode"}, "%q: want VIP or Proxy", m)
	}
	if q := c.Kubernetes.QPS; q <= 0 || q > 10000 {
		return l.failRoot("kubernetes.qps", []any{"kubernetes", "qps"}, "%v: want more than 0 and at most 10000 requests per second", q)
	}
	if b := c.Kubernetes.Burst; b < 1 || b > 100000 {
		return l.failRoot("kubernetes.burst", []any{"kubernetes", "burst"}, "%d: want 1 to 100000", b)
	}
	if c.Kubernetes.MetallbCRDs && c.Kubernetes.MetallbNamespace == "" {
		return l.failRoot("kubernetes.metallbNamespace", []any{"kubernetes", "metallbNamespace"}, "empty: name the namespace of MetalLB's IPAddressPool objects (default %s)", DefaultMetallbNamespace)
	}
	if _, _, err := net.SplitHostPort(c.Metrics.Address); err != nil {
		return l.failRoot("metrics.address", []any{"metrics", "address"}, "%q is not host:port", c.Metrics.Address)
	}
	if err := l.checkMetricsTLS(); err != nil {
		return err
	}
	if err := l.checkLog(); err != nil {
		return err
	}
	if err := l.checkHealth(); err != nil {
		return err
	}
	return l.checkHAProxy()
}

// checkNodeInPeers refuses a node.name that is not a raft peer ID when peers
// are listed: raft would start this host as a member nobody knows, and the
// group would never hear from it.
func (l *loaded) checkNodeInPeers() error {
	c := l.cfg
	if len(c.Raft.Peers) == 0 || slices.ContainsFunc(c.Raft.Peers, func(p Peer) bool { return p.ID == c.Node.Name }) {
		return nil
	}
	ids := make([]string, len(c.Raft.Peers))
	for i, p := range c.Raft.Peers {
		ids[i] = p.ID
	}
	origin := ""
	if n := locate(l.root, "node", "name"); n == nil || n.Kind != yaml.ScalarNode {
		origin = " (the hostname: node.name is not set)"
	}
	return l.failRoot("node.name", []any{"node", "name"}, "%q%s is not one of raft.peers[].id (%s): set node.name to this host's peer id",
		c.Node.Name, origin, strings.Join(ids, ", "))
}

// checkSelectiveHosts refuses serviceSelectors that would narrow the hosts
// allowed to announce a pool for some Services: edged picks an IP's
// announcer per pool (Config.selectiveHostsConflict says why).
func (l *loaded) checkSelectiveHosts() error {
	c := l.cfg
	for _, p := range c.Pools {
		i := c.selectiveHostsConflict(p)
		if i < 0 {
			continue
		}
		return l.failAt(l.adverts[i], []any{"serviceSelectors"}, ".serviceSelectors",
			"with serviceSelectors this advertisement would change which edge hosts may announce pool %q for some Services, "+
				"but edged chooses the announcing host per pool: give the pool's advertisements without serviceSelectors "+
				"every host this one allows (nodes), or give all its advertisements the same nodes", p.Name)
	}
	return nil
}

// checkMetricsTLS loads the metrics TLS files when any is named, so a
// missing file, a key that does not match its certificate or a client CA
// file without a certificate is refused at load, naming the field.
func (l *loaded) checkMetricsTLS() error {
	t := l.cfg.Metrics.TLS.Files()
	if !t.Enabled() {
		return nil
	}
	err := t.Check()
	var fe *metricsrv.TLSFileError
	if errors.As(err, &fe) {
		return l.failRoot("metrics.tls."+fe.Field, []any{"metrics", "tls", fe.Field}, "%v", fe.Err)
	}
	return err
}
