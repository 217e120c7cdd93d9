package l2

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/config"
)

// scopeYAML gives each pool one case of config.PoolInterfaces.
const scopeYAML = `node: {name: edge1}
announce: {interfaces: [eth9]}
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
  - {name: c, addresses: [10.0.3.0/24]}
  - {name: d, addresses: [10.0.4.0/24]}
  - {name: e, addresses: ["fd00:1::/120"]}
l2Advertisements:
  - {name: a1, ipAddressPools: [a], interfaces: [eth0]}
  - {name: a2, ipAddressPools: [a], interfaces: [eth1]}
  - {name: b1, ipAddressPools: [b]}
  - {name: c1, ipAddressPools: [c], interfaces: [eth0], nodes: [edge2]}
  - {name: e1, ipAddressPools: [e], interfaces: [eth2]}
`

// staticScopeYAML adds static VIPs to scopeYAML: their own interfaces,
// another host's, the announce defaults.
const staticScopeYAML = `staticVIPs:
  - {name: stats, address: 10.0.5.5, interfaces: [eth3]}
  - {name: api, address: 10.0.5.6, nodes: [edge2]}
  - {name: dflt, address: 10.0.5.7}
`

// mustConfig loads yaml with the real loader.
func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edged.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestLeaseScope(t *testing.T) {
	scope := leaseScope(mustConfig(t, scopeYAML+staticScopeYAML), nil)
	type result struct {
		Ifaces []string
		OK     bool
		InPool bool
	}
	tests := []struct {
		name string
		ip   string
		want result
	}{
		{"union of two advertisements", "10.0.1.5", result{[]string{"eth0", "eth1"}, true, true}},
		{"advertisement without interfaces uses announce.interfaces", "10.0.2.5", result{[]string{"eth9"}, true, true}},
		{"advertisement for another node", "10.0.3.5", result{nil, false, true}},
		{"pool without advertisement", "10.0.4.5", result{nil, false, true}},
		{"outside every pool", "10.0.9.5", result{nil, false, false}},
		{"IPv6 pool", "fd00:1::5", result{[]string{"eth2"}, true, true}},
		{"IPv4-mapped IPv6", "::ffff:10.0.1.5", result{[]string{"eth0", "eth1"}, true, true}},
		{"static VIP on its own interfaces", "10.0.5.5", result{[]string{"eth3"}, true, true}},
		{"static VIP for another node", "10.0.5.6", result{[]string{"eth9"}, false, true}},
		{"static VIP without interfaces uses announce.interfaces", "10.0.5.7", result{[]string{"eth9"}, true, true}},
		{"next to a static VIP", "10.0.5.8", result{nil, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got result
			got.Ifaces, got.OK, got.InPool = scope(netip.MustParseAddr(tc.ip))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("leaseScope(%s) (-want +got):\n%s", tc.ip, diff)
			}
		})
	}
}
