package config

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// advertYAML has one pool per L2Advertisement rule: two advertisements,
// one without interfaces, another host's, none, IPv6, a label selector
// with a nodes list.
const advertYAML = `node: {name: edge1}
announce: {interfaces: [eth9]}
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
  - {name: c, addresses: [10.0.3.0/24]}
  - {name: d, addresses: [10.0.4.0/24]}
  - {name: e, addresses: ["fd00:1::/120"]}
  - {name: f, addresses: [10.0.6.0/24], labels: {tier: web}}
l2Advertisements:
  - {name: a1, ipAddressPools: [a], interfaces: [eth0]}
  - {name: a2, ipAddressPools: [a], interfaces: [eth1]}
  - {name: b1, ipAddressPools: [b]}
  - {name: c1, ipAddressPools: [c], interfaces: [eth0], nodes: [edge2]}
  - {name: e1, ipAddressPools: [e], interfaces: [eth2]}
  - {name: f1, ipAddressPoolSelectors: [{matchLabels: {tier: web}}], interfaces: [eth3], nodes: [edge1, edge3]}
`

// mustAdvertConfig loads advertYAML with the real loader.
func mustAdvertConfig(t *testing.T) *Config {
	t.Helper()
	dir := writeFiles(t, map[string]string{"edged.yaml": advertYAML})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// small is a config built by hand, for the rules' corner cases.
func small(announce []string, ads ...L2Advertisement) *Config {
	return &Config{Node: Node{Name: "edge1"}, Announce: Announce{Interfaces: announce},
		Pools: []Pool{{Name: "a"}, {Name: "b", Labels: map[string]string{"tier": "web"}}}, L2Advertisements: ads}
}

func TestAdvertisementsFor(t *testing.T) {
	cfg := mustAdvertConfig(t)
	tests := []struct {
		name string
		cfg  *Config
		pool string
		want []string
	}{
		{"named by two", cfg, "a", []string{"a1", "a2"}},
		{"named by another host's", cfg, "c", []string{"c1"}},
		{"named by none", cfg, "d", nil},
		{"selected by label", cfg, "f", []string{"f1"}},
		{"unknown pool", cfg, "nope", nil},
		{"naming and selecting nothing: every pool", small(nil, L2Advertisement{Name: "all"}), "b", []string{"all"}},
		{"selector that does not match", small(nil, L2Advertisement{Name: "web",
			IPAddressPoolSelectors: []LabelSelector{{MatchLabels: map[string]string{"tier": "web"}}}}), "a", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, ad := range tc.cfg.AdvertisementsFor(tc.pool) {
				got = append(got, ad.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("AdvertisementsFor(%q) (-want +got):\n%s", tc.pool, diff)
			}
		})
	}
}

func TestPoolInterfaces(t *testing.T) {
	cfg := mustAdvertConfig(t)
	type result struct {
		Ifaces []string
		OK     bool
	}
	tests := []struct {
		name string
		cfg  *Config
		pool string
		want result
	}{
		{"union of two advertisements", cfg, "a", result{[]string{"eth0", "eth1"}, true}},
		{"advertisement without interfaces uses announce.interfaces", cfg, "b", result{[]string{"eth9"}, true}},
		{"advertisement for another host", cfg, "c", result{nil, false}},
		{"pool without advertisement", cfg, "d", result{nil, false}},
		{"IPv6 pool", cfg, "e", result{[]string{"eth2"}, true}},
		{"nodes list naming this host", cfg, "f", result{[]string{"eth3"}, true}},
		{"no interfaces anywhere: every served one", small(nil, L2Advertisement{Name: "x"}), "a", result{nil, true}},
		{"one advertisement meaning all wins over a named one", small(nil,
			L2Advertisement{Name: "x", Interfaces: []string{"eth0"}}, L2Advertisement{Name: "y"}), "a", result{nil, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got result
			got.Ifaces, got.OK = tc.cfg.PoolInterfaces(tc.pool, nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("PoolInterfaces(%q) (-want +got):\n%s", tc.pool, diff)
			}
		})
	}
}

func TestEligibility(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		want map[string][]string
	}{
		{"pools limited by nodes lists", mustAdvertConfig(t), map[string][]string{"c": {"edge2"}, "f": {"edge1", "edge3"}}},
		{"no advertisements", small(nil), map[string][]string{}},
		{"two nodes lists add up", small(nil,
			L2Advertisement{Name: "x", IPAddressPools: []string{"a"}, Nodes: []string{"edge1"}},
			L2Advertisement{Name: "y", IPAddressPools: []string{"a"}, Nodes: []string{"edge2"}}),
			map[string][]string{"a": {"edge1", "edge2"}}},
		{"one advertisement without nodes: every host", small(nil,
			L2Advertisement{Name: "x", IPAddressPools: []string{"a"}, Nodes: []string{"edge1"}},
			L2Advertisement{Name: "y", IPAddressPools: []string{"a"}}),
			map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.cfg.Eligibility()); diff != "" {
				t.Errorf("Eligibility (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAdvertisedInterfaces(t *testing.T) {
	type result struct {
		Names []string
		All   bool
	}
	tests := []struct {
		name string
		cfg  *Config
		want result
	}{
		{"every advertisement's, for any host", mustAdvertConfig(t), result{[]string{"eth0", "eth1", "eth9", "eth2", "eth3"}, false}},
		{"no advertisement, announce.interfaces", small([]string{"eth5"}), result{[]string{"eth5"}, false}},
		{"no advertisement, no announce.interfaces", small(nil), result{nil, true}},
		{"an advertisement without interfaces and no announce.interfaces", small(nil,
			L2Advertisement{Name: "x", Interfaces: []string{"eth0"}}, L2Advertisement{Name: "y"}),
			result{[]string{"eth0"}, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got result
			got.Names, got.All = tc.cfg.AdvertisedInterfaces()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("AdvertisedInterfaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostInterfaces(t *testing.T) {
	cfg := mustAdvertConfig(t)
	tests := []struct {
		name string
		cfg  *Config
		base []string
		want []string
	}{
		// c1 is edge2's: its eth0 comes from a1 here.
		{"base plus what this host's advertisements name", cfg, []string{"eth9"}, []string{"eth9", "eth0", "eth1", "eth2", "eth3"}},
		{"another host's advertisement adds nothing", small(nil,
			L2Advertisement{Name: "x", Interfaces: []string{"eth0"}, Nodes: []string{"edge2"}}),
			[]string{"eth9"}, []string{"eth9"}},
		{"base kept in order, no duplicates", small(nil,
			L2Advertisement{Name: "x", Interfaces: []string{"eth1", "eth0"}}),
			[]string{"eth0", "eth9"}, []string{"eth0", "eth9", "eth1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.cfg.HostInterfaces(tc.base)); diff != "" {
				t.Errorf("HostInterfaces(%v) (-want +got):\n%s", tc.base, diff)
			}
		})
	}
}

// TestServiceSelectors: an advertisement with serviceSelectors announces
// only the IPs whose Services' labels one of them matches (a shared IP: any
// of its Services), on its own interfaces, in edged.yaml and in MetalLB's
// manifests alike; preferred hosts cannot be expressed and are refused.
func TestServiceSelectors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": `node: {name: edge1}
announce: {interfaces: [eth9]}
metallbManifests: [ads.yaml]
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
l2Advertisements:
  - {name: all, ipAddressPools: [a], interfaces: [eth0]}
  - name: web
    ipAddressPools: [a]
    interfaces: [eth1]
    serviceSelectors: [{matchLabels: {app: web}}, {matchExpressions: [{key: tier, operator: In, values: [gold]}]}]
`, "ads.yaml": `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: only-dns}
spec:
  ipAddressPools: [b]
  interfaces: [eth2]
  serviceSelectors: [{matchLabels: {app: dns}}]
  preferredNodeSelectors: []
`})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Selective() {
		t.Error("Selective = false with serviceSelectors in force")
	}
	web, gold, dns, other := map[string]string{"app": "web"}, map[string]string{"tier": "gold"}, map[string]string{"app": "dns"}, map[string]string{"app": "db"}
	type result struct {
		Ifaces []string
		OK     bool
	}
	for _, tc := range []struct {
		name     string
		pool     string
		services []map[string]string
		want     result
	}{
		{"matchLabels", "a", []map[string]string{web}, result{[]string{"eth0", "eth1"}, true}},
		{"matchExpressions", "a", []map[string]string{gold}, result{[]string{"eth0", "eth1"}, true}},
		{"no match: the other advertisement only", "a", []map[string]string{other}, result{[]string{"eth0"}, true}},
		{"labels unknown (an allocation from before labels were kept)", "a", nil, result{[]string{"eth0"}, true}},
		{"shared IP: any Service matching", "a", []map[string]string{other, web}, result{[]string{"eth0", "eth1"}, true}},
		{"manifest's advertisement", "b", []map[string]string{dns}, result{[]string{"eth2"}, true}},
		{"manifest's advertisement, no match: not announced", "b", []map[string]string{other}, result{nil, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got result
			got.Ifaces, got.OK = cfg.PoolInterfaces(tc.pool, tc.services)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("PoolInterfaces(%q, %v) (-want +got):\n%s", tc.pool, tc.services, diff)
			}
		})
	}
}

// TestSelectiveHosts: serviceSelectors may not change which hosts may
// announce a pool for some Services, since raft picks an IP's announcer
// per pool (Eligibility); allowed and refused shapes.
func TestSelectiveHosts(t *testing.T) {
	sel := []LabelSelector{{MatchLabels: map[string]string{"app": "web"}}}
	ad := func(name string, selective bool, nodes ...string) L2Advertisement {
		a := L2Advertisement{Name: name, IPAddressPools: []string{"a"}, Nodes: nodes}
		if selective {
			a.ServiceSelectors = sel
		}
		return a
	}
	for _, tc := range []struct {
		name string
		ads  []L2Advertisement
		want int
	}{
		{"no nodes anywhere", []L2Advertisement{ad("x", false), ad("y", true)}, -1},
		{"selective within the others' hosts", []L2Advertisement{ad("x", false, "edge1", "edge2"), ad("y", true, "edge2")}, -1},
		{"only selective ones, same hosts", []L2Advertisement{ad("x", true, "edge1"), ad("y", true, "edge1")}, -1},
		{"selective adds a host", []L2Advertisement{ad("x", false, "edge1"), ad("y", true, "edge2")}, 1},
		{"selective for every host, others for one", []L2Advertisement{ad("x", false, "edge1"), ad("y", true)}, 1},
		{"only selective ones, different hosts", []L2Advertisement{ad("x", true, "edge1"), ad("y", true, "edge2")}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := small(nil, tc.ads...)
			if got := cfg.selectiveHostsConflict(cfg.Pools[0]); got != tc.want {
				t.Errorf("selectiveHostsConflict = %d, want %d", got, tc.want)
			}
		})
	}
}
