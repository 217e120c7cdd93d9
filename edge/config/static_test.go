package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/lbpool"
)

// staticYAML has three static VIPs: one on its own interface for every
// host, one restricted to two hosts, one on the announce defaults.
const staticYAML = `node: {name: edge1}
raft:
  insecurePlaintext: true
  peers: [{id: edge1, address: "10.0.0.1:7950"}, {id: edge2, address: "10.0.0.2:7950"}, {id: edge3, address: "10.0.0.3:7950"}]
announce: {interfaces: [eth9]}
pools:
  - {name: primary, addresses: ["10.4.11.0 - 10.4.15.254"]}
l2Advertisements:
  - {name: primary, interfaces: [eth0]}
staticVIPs:
  - {name: stats, address: 10.4.10.5, interfaces: [eth1]}
  - {name: kube-api, address: 10.4.10.6, nodes: [edge2, edge3]}
  - {name: v6, address: "fd00:4::5"}
`

func mustStatic(t *testing.T) *Config {
	t.Helper()
	dir := writeFiles(t, map[string]string{"edged.yaml": staticYAML})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestStaticVIPPools: each static VIP becomes a pool of its own after the
// Service pools, an allocation request for its address, an eligibility
// entry when it names nodes, and its own interfaces for the announcer; an
// advertisement that selects every pool does not select it.
func TestStaticVIPPools(t *testing.T) {
	cfg := mustStatic(t)
	addr := netip.MustParseAddr
	want := []lbpool.Pool{
		cfg.LBPools[0],
		lbpool.StaticPool("stats", addr("10.4.10.5")),
		lbpool.StaticPool("kube-api", addr("10.4.10.6")),
		lbpool.StaticPool("v6", addr("fd00:4::5")),
	}
	if !lbpool.PoolsEqual(want, cfg.LBPools) {
		t.Errorf("LBPools = %+v, want primary then the three static pools", cfg.LBPools)
	}
	var keys []string
	for _, r := range lbpool.StaticRequests(cfg.LBPools) {
		keys = append(keys, r.Key+"="+r.IPs[0].String())
	}
	if diff := cmp.Diff([]string{"edged-static:stats=10.4.10.5", "edged-static:kube-api=10.4.10.6", "edged-static:v6=fd00:4::5"}, keys); diff != "" {
		t.Errorf("static requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"edged-static:kube-api": {"edge2", "edge3"}}, cfg.Eligibility()); diff != "" {
		t.Errorf("Eligibility (-want +got):\n%s", diff)
	}
	type scope struct {
		Ifaces []string
		OK     bool
	}
	for _, tc := range []struct {
		pool string
		want scope
	}{
		{"primary", scope{[]string{"eth0"}, true}},
		{"edged-static:stats", scope{[]string{"eth1"}, true}},
		{"edged-static:kube-api", scope{[]string{"eth9"}, false}}, // not edge1's
		{"edged-static:v6", scope{[]string{"eth9"}, true}},
		{"edged-static:gone", scope{nil, false}},
	} {
		ifs, ok := cfg.PoolInterfaces(tc.pool, nil)
		if diff := cmp.Diff(tc.want, scope{ifs, ok}); diff != "" {
			t.Errorf("PoolInterfaces(%s) (-want +got):\n%s", tc.pool, diff)
		}
	}
	names, all := cfg.AdvertisedInterfaces()
	if diff := cmp.Diff([]string{"eth0", "eth1", "eth9"}, names); diff != "" || all {
		t.Errorf("AdvertisedInterfaces = %v, %t; want [eth0 eth1 eth9], false (-want +got):\n%s", names, all, diff)
	}
	if diff := cmp.Diff([]string{"lo9", "eth0", "eth1"}, cfg.HostInterfaces([]string{"lo9"})); diff != "" {
		t.Errorf("HostInterfaces (-want +got):\n%s", diff)
	}
	sum, err := cfg.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if got := sum[2].Advertisements; len(got) != 1 || got[0] != "static VIP kube-api (eth9 from edge2,edge3)" {
		t.Errorf("summary of kube-api = %q", got)
	}
}

// TestStaticVIPsWithObjects: MetalLB's objects merge before the static
// pools, and an object's pool that takes a static address is refused with
// an error naming the static VIP's line.
func TestStaticVIPsWithObjects(t *testing.T) {
	cfg := mustStatic(t)
	obj := func(addr string) Object {
		return Object{Source: "IPAddressPool metallb-system/crd", Data: []byte(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: crd, namespace: metallb-system}
spec: {addresses: ["` + addr + `"]}
`)}
	}
	got, err := cfg.WithObjects([]Object{obj("192.168.60.0/30")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got.LBPools {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"primary", "crd", "edged-static:stats", "edged-static:kube-api", "edged-static:v6"}, names); diff != "" {
		t.Errorf("merged pools (-want +got):\n%s", diff)
	}
	_, err = cfg.WithObjects([]Object{obj("10.4.10.0/24")})
	if err == nil || !strings.Contains(err.Error(), `edged.yaml:11: staticVIPs[0].address: 10.4.10.5 is inside pool "crd"`) {
		t.Errorf("WithObjects with a pool over a static VIP = %v, want an error naming staticVIPs[0].address", err)
	}
}

func TestStaticVIPErrors(t *testing.T) {
	const head = "node: {name: edge1}\nraft:\n  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}]\n" + minimal + "staticVIPs:\n"
	// head ends at line 8; the first static VIP is on line 9.
	for _, tc := range []struct {
		name, vips string
		want       []string
	}{
		{"bad name", "  - {name: Stats_1, address: 10.4.10.5}\n",
			[]string{"edged.yaml:9: staticVIPs[0].name", `"Stats_1": want a DNS label`}},
		{"no name", "  - {address: 10.4.10.5}\n",
			[]string{"edged.yaml:9: staticVIPs[0].name", `"": want a DNS label`}},
		{"duplicate name", "  - {name: a, address: 10.4.10.5}\n  - {name: a, address: 10.4.10.6}\n",
			[]string{"edged.yaml:10: staticVIPs[1].name", "also the name of staticVIPs[0]"}},
		{"bad address", "  - {name: a, address: 10.4.10.500}\n",
			[]string{"edged.yaml:9: staticVIPs[0].address", "not an IP address"}},
		{"loopback", "  - {name: a, address: 127.0.0.5}\n",
			[]string{"edged.yaml:9: staticVIPs[0].address", "not a remote unicast address"}},
		{"a range", "  - name: a\n    address: 10.4.10.0/24\n",
			[]string{"edged.yaml:10: staticVIPs[0].address", "not an IP address"}},
		{"duplicate address", "  - {name: a, address: 10.4.10.5}\n  - {name: b, address: 10.4.10.5}\n",
			[]string{"edged.yaml:10: staticVIPs[1].address", "also the address of staticVIPs[0]"}},
		{"inside a pool", "  - name: a\n    address: 10.4.12.1\n",
			[]string{"edged.yaml:10: staticVIPs[0].address", `10.4.12.1 is inside pool "primary" (pools[0]`}},
		{"bad interface", "  - {name: a, address: 10.4.10.5, interfaces: [eth0, \"eth0:1\"]}\n",
			[]string{"edged.yaml:9: staticVIPs[0].interfaces[1]", `"eth0:1" is not a Linux interface name`}},
		{"unknown node", "  - name: a\n    address: 10.4.10.5\n    nodes: [edge1, edge7]\n",
			[]string{"edged.yaml:11: staticVIPs[0].nodes[1]", `"edge7" is not one of raft.peers`}},
		{"health check", "  - name: a\n    address: 10.4.10.5\n    healthCheck: {tcp: \"127.0.0.1:6443\"}\n",
			[]string{"edged.yaml:11: staticVIPs[0].healthCheck", "not supported yet"}},
		{"unknown key", "  - {name: a, address: 10.4.10.5, interface: [eth0]}\n",
			[]string{"edged.yaml:9: staticVIPs[0].interface", `did you mean "interfaces"?`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"edged.yaml": head + tc.vips})
			_, err := Load(filepath.Join(dir, "edged.yaml"))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want an ErrInvalid", err)
			}
			msg := strings.ReplaceAll(err.Error(), dir+"/", "")
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestReservedPoolName: a Service pool may not take a static VIP's name.
func TestReservedPoolName(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": "pools:\n  - name: edged-static:x\n    addresses: [10.0.0.0/24]\n"})
	_, err := Load(filepath.Join(dir, "edged.yaml"))
	if err == nil || !strings.Contains(err.Error(), "edged.yaml:2: pools[0].name") || !strings.Contains(err.Error(), "reserved for staticVIPs") {
		t.Errorf("Load = %v, want the reserved name refused at pools[0].name", err)
	}
}
