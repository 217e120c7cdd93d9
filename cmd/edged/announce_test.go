package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/config"
)

func TestLeaseScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edged.yaml")
	yaml := `node: {name: edge1}
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
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	scope := leaseScope(cfg)
	tests := []struct {
		name   string
		ip     string
		ifaces []string
		ok     bool
	}{
		{"union of two advertisements", "10.0.1.5", []string{"eth0", "eth1"}, true},
		{"advertisement without interfaces uses announce.interfaces", "10.0.2.5", []string{"eth9"}, true},
		{"advertisement for another node", "10.0.3.5", nil, false},
		{"pool without advertisement", "10.0.4.5", nil, false},
		{"outside every pool", "10.0.9.5", nil, false},
		{"IPv6 pool", "fd00:1::5", []string{"eth2"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ifaces, ok := scope(netip.MustParseAddr(tc.ip))
			if diff := cmp.Diff([2]any{tc.ifaces, tc.ok}, [2]any{ifaces, ok}); diff != "" {
				t.Errorf("leaseScope(%s) (-want +got):\n%s", tc.ip, diff)
			}
		})
	}
	got, err := announceInterfaces(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eth0", "eth1", "eth9", "eth2"}, got); diff != "" {
		t.Errorf("announceInterfaces (-want +got):\n%s", diff)
	}
	// With MetalLB's objects as the source, edged serves announce.interfaces
	// and adds what the advertisements in force name for this host (c1 is
	// edge2's: its eth0 comes from a1 here).
	if diff := cmp.Diff([]string{"eth9", "eth0", "eth1", "eth2"}, servedInterfaces([]string{"eth9"}, cfg)); diff != "" {
		t.Errorf("servedInterfaces (-want +got):\n%s", diff)
	}
	cfg.L2Advertisements = cfg.L2Advertisements[3:4] // only edge2's
	if diff := cmp.Diff([]string{"eth9"}, servedInterfaces([]string{"eth9"}, cfg)); diff != "" {
		t.Errorf("servedInterfaces with another node's advertisement (-want +got):\n%s", diff)
	}
}
