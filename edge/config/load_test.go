package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFiles writes name -> content into a temp dir and returns the dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const minimal = `pools:
  - name: primary
    addresses: ["10.4.11.0 - 10.4.15.254"]
`

func TestLoadMinimalGetsDefaults(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": minimal})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	got := []any{cfg.Node.Name, cfg.Node.DataDir, cfg.Raft.BindAddress, cfg.Raft.LeaseDuration, cfg.Kubernetes.IPMode,
		cfg.HAProxy.ServerSlots, cfg.HAProxy.Coalesce, cfg.Metrics.Address, cfg.LBPools[0].AutoAssign, cfg.LBPools[0].AvoidBuggyIPs}
	want := []any{host, DefaultDataDir, DefaultRaftBind, DefaultLeaseDuration, "VIP",
		DefaultServerSlots, DefaultCoalesce, ":7472", true, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadOverridesAndLabels(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": `node: {name: edge2}
raft:
  leaseDuration: 150ms
  insecurePlaintext: true
  peers: [{id: edge1, address: "10.0.0.1:7950"}, {id: edge2, address: "10.0.0.2:7950"}]
pools:
  - name: web
    addresses: ["10.4.11.0/24", "fd00:4::/120"]
    autoAssign: false
    serviceAllocation:
      priority: 5
      serviceSelectors:
        - matchLabels: {app.kubernetes.io/name: Web}
l2Advertisements:
  - name: web
    ipAddressPools: [web]
    interfaces: [eth0]
    nodes: [edge1]
`})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.LBPools[0]
	if p.AutoAssign || *p.Allocation.Priority != 5 || len(p.Ranges) != 2 {
		t.Errorf("pool = %+v", p)
	}
	// Label keys keep their dots and case (viper would fold them).
	if diff := cmp.Diff(map[string]string{"app.kubernetes.io/name": "Web"}, p.Allocation.ServiceSelectors[0].MatchLabels); diff != "" {
		t.Errorf("matchLabels (-want +got):\n%s", diff)
	}
	if cfg.Node.Name != "edge2" || cfg.Raft.LeaseDuration != 150*time.Millisecond || len(cfg.Raft.Peers) != 2 {
		t.Errorf("node/raft = %+v %+v", cfg.Node, cfg.Raft)
	}
	sum, err := cfg.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if sum[0].V4 != 256 || sum[0].V6 != 256 || sum[0].Advertisements[0] != "web (eth0 from edge1)" {
		t.Errorf("summary = %+v", sum[0])
	}
}

// TestBadInput: every mistake an operator can make is refused with the file,
// the line and the field, and a message that says what is wrong.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error, in order: file:line, field, message
	}{
		{name: "malformed YAML", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses: [10.0.0.0/24\n"},
			want: []string{"edged.yaml:", "malformed YAML"}},
		{name: "unknown top-level key", files: map[string]string{"edged.yaml": minimal + "metrcs:\n  address: :9100\n"},
			want: []string{"edged.yaml:4: metrcs: unknown key \"metrcs\" (did you mean \"metrics\"?)"}},
		{name: "unknown nested key", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    adresses: [10.0.0.0/24]\n"},
			want: []string{"edged.yaml:3: pools[0].adresses: unknown key", `did you mean "addresses"`}},
		{name: "wrong case key", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses: [10.0.0.0/24]\n    autoassign: false\n"},
			want: []string{"edged.yaml:4: pools[0].autoassign", "keys are case-sensitive"}},
		{name: "empty pool", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses: []\n"},
			want: []string{"edged.yaml:3: pools[0].addresses: pool \"a\" is empty"}},
		{name: "no pools", files: map[string]string{"edged.yaml": "node: {name: x}\n"},
			want: []string{"edged.yaml:1: pools: no pools"}},
		{name: "reversed range", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses:\n      - 10.4.15.254 - 10.4.11.0\n"},
			want: []string{"edged.yaml:4: pools[0].addresses[0]", "is reversed"}},
		{name: "range across families", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses: [\"10.0.0.1 - fd00::1\"]\n"},
			want: []string{"edged.yaml:3: pools[0].addresses[0]", "mixes IPv4 and IPv6"}},
		{name: "invalid CIDR", files: map[string]string{"edged.yaml": "pools:\n  - name: a\n    addresses:\n      - 10.0.0.0/33\n"},
			want: []string{"edged.yaml:4: pools[0].addresses[0]", "not a valid CIDR"}},
		{name: "overlapping pools", files: map[string]string{"edged.yaml": minimal + "  - name: b\n    addresses:\n      - 10.4.12.0/24\n"},
			want: []string{"edged.yaml:6: pools[1].addresses[0]", `overlaps 10.4.11.0 - 10.4.15.254 of pool "primary"`}},
		{name: "duplicate pool names", files: map[string]string{"edged.yaml": minimal + "  - name: primary\n    addresses: [10.5.0.0/24]\n"},
			want: []string{"edged.yaml:4: pools[1].name", "duplicate pool name"}},
		{name: "advertisement names a missing pool", files: map[string]string{"edged.yaml": minimal + "l2Advertisements:\n  - name: x\n    ipAddressPools: [primary, secondary]\n"},
			want: []string{"edged.yaml:6: l2Advertisements[0].ipAddressPools[1]", `no pool named "secondary"`}},
		{name: "non-integer priority", files: map[string]string{"edged.yaml": minimal + "    serviceAllocation:\n      priority: high\n"},
			want: []string{"edged.yaml:5: pools[0].serviceAllocation.priority", `"high" is not an integer`}},
		{name: "heartbeat timeout too short", files: map[string]string{"edged.yaml": "raft:\n  heartbeatTimeout: 5ms\n  electionTimeout: 5ms\n  leaseDuration: 5ms\n" + minimal},
			want: []string{"raft.heartbeatTimeout", "5ms is below 10ms"}},
		{name: "bad duration", files: map[string]string{"edged.yaml": "raft:\n  leaseDuration: 2 seconds\n" + minimal},
			want: []string{"edged.yaml:2: raft.leaseDuration", "is not a duration"}},
		{name: "bad operator", files: map[string]string{"edged.yaml": minimal + "    serviceAllocation:\n      namespaceSelectors:\n        - matchExpressions: [{key: a, operator: Equals, values: [b]}]\n"},
			want: []string{"edged.yaml:6: pools[0].serviceAllocation.namespaceSelectors[0].matchExpressions[0].operator", "want one of In"}},
		{name: "BGP manifest", files: map[string]string{
			"edged.yaml": "metallbManifests: [bgp.yaml]\n",
			"bgp.yaml":   "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: router}\nspec: {peerASN: 64500}\n"},
			want: []string{"bgp.yaml:2: kind: BGPPeer is not supported: edged does L2 only"}},
		{name: "manifest with a bad range", files: map[string]string{
			"edged.yaml": "metallbManifests: [pools.yaml]\n",
			"pools.yaml": "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec:\n  addresses:\n    - 10.0.0.9 - 10.0.0.1\n"},
			want: []string{"pools.yaml:6: IPAddressPool \"p\" spec.addresses[0]", "is reversed"}},
		{name: "manifest unknown field", files: map[string]string{
			"edged.yaml": "metallbManifests: [pools.yaml]\n",
			"pools.yaml": "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec:\n  adresses: [10.0.0.0/24]\n"},
			want: []string{"pools.yaml:5: IPAddressPool \"p\" spec.adresses: unknown key"}},
		{name: "missing manifest", files: map[string]string{"edged.yaml": minimal + "metallbManifests:\n  - nowhere.yaml\n"},
			want: []string{"edged.yaml:5: metallbManifests: cannot read MetalLB manifest", "nowhere.yaml", "no such file"}},
		{name: "TLS missing for peers", files: map[string]string{"edged.yaml": "node: {name: a}\nraft:\n  peers: [{id: a, address: \"10.0.0.1:7950\"}]\n" + minimal},
			want: []string{"edged.yaml:3: raft.tls", "insecurePlaintext"}},
		{name: "ipMode", files: map[string]string{"edged.yaml": "kubernetes:\n  ipMode: Direct\n" + minimal},
			want: []string{"edged.yaml:2: kubernetes.ipMode", "want VIP or Proxy"}},
		{name: "qps", files: map[string]string{"edged.yaml": "kubernetes:\n  qps: 0\n" + minimal},
			want: []string{"edged.yaml:2: kubernetes.qps", "want more than 0"}},
		{name: "burst", files: map[string]string{"edged.yaml": "kubernetes:\n  burst: -1\n" + minimal},
			want: []string{"edged.yaml:2: kubernetes.burst", "want 1 to 100000"}},
		// What every HAProxy render refuses is refused here too (validate = run).
		{name: "stats password with a space", files: map[string]string{"edged.yaml": stats("user: admin", "password: pass word")},
			want: []string{"edged.yaml:5: haproxy.stats.password", "no spaces, quotes or #"}},
		{name: "stats password with a quote", files: map[string]string{"edged.yaml": stats("user: admin", `password: "pa'ss"`)},
			want: []string{"edged.yaml:5: haproxy.stats.password", "A-Z a-z 0-9"}},
		{name: "stats user with a hash", files: map[string]string{"edged.yaml": stats(`user: "ad#min"`, "password: secret")},
			want: []string{"edged.yaml:4: haproxy.stats.user", "no spaces, quotes or #"}},
		{name: "stats user without password", files: map[string]string{"edged.yaml": stats("user: admin")},
			want: []string{"edged.yaml:4: haproxy.stats.user", "set password too, or neither"}},
		{name: "stats password without user", files: map[string]string{"edged.yaml": stats("password: secret")},
			want: []string{"edged.yaml:4: haproxy.stats.password", "set user too, or neither"}},
		{name: "stats uri without slash", files: map[string]string{"edged.yaml": stats("uri: stats")},
			want: []string{"edged.yaml:4: haproxy.stats.uri", `"stats": want a path starting with /`}},
		{name: "stats uri with a space", files: map[string]string{"edged.yaml": stats("uri: /my stats")},
			want: []string{"edged.yaml:4: haproxy.stats.uri", "want a path starting with /"}},
		{name: "stats uri empty", files: map[string]string{"edged.yaml": stats(`uri: ""`)},
			want: []string{"edged.yaml:4: haproxy.stats.uri", "(default /stats)"}},
		{name: "stats bind without address", files: map[string]string{"edged.yaml": "haproxy:\n  stats:\n    bind: \":8404\"\n" + minimal},
			want: []string{"edged.yaml:3: haproxy.stats.bind", `":8404" is not ip:port`, "0.0.0.0:8404"}},
		{name: "stats bind hostname", files: map[string]string{"edged.yaml": "haproxy:\n  stats:\n    bind: localhost:8404\n" + minimal},
			want: []string{"edged.yaml:3: haproxy.stats.bind", "is not ip:port"}},
		{name: "stats bind port 0", files: map[string]string{"edged.yaml": "haproxy:\n  stats:\n    bind: 127.0.0.1:0\n" + minimal},
			want: []string{"edged.yaml:3: haproxy.stats.bind", "is not ip:port"}},
		{name: "stats bind with zone", files: map[string]string{"edged.yaml": "haproxy:\n  stats:\n    bind: \"[fe80::1%eth0]:8404\"\n" + minimal},
			want: []string{"edged.yaml:3: haproxy.stats.bind", "is not ip:port"}},
		{name: "certDir relative", files: map[string]string{"edged.yaml": "haproxy:\n  certDir: certs\n" + minimal},
			want: []string{"edged.yaml:2: haproxy.certDir", `"certs": want an absolute path`}},
		{name: "certDir with a space", files: map[string]string{"edged.yaml": "haproxy:\n  certDir: /etc/haproxy/my certs\n" + minimal},
			want: []string{"edged.yaml:2: haproxy.certDir", "A-Z a-z 0-9"}},
		{name: "certDir too long", files: map[string]string{"edged.yaml": "haproxy:\n  certDir: /" + strings.Repeat("d", 128) + "\n" + minimal},
			want: []string{"edged.yaml:2: haproxy.certDir", "at most 128 bytes"}},
		{name: "bad serviceSelectors operator", files: map[string]string{"edged.yaml": minimal + "l2Advertisements:\n  - name: x\n    serviceSelectors:\n      - matchExpressions: [{key: a, operator: Equals, values: [b]}]\n"},
			want: []string{"edged.yaml:7: l2Advertisements[0].serviceSelectors[0].matchExpressions[0].operator", "want one of In"}},
		{name: "serviceSelectors narrowing the hosts", files: map[string]string{"edged.yaml": minimal +
			"l2Advertisements:\n  - {name: all, nodes: [edge1]}\n  - name: web\n    nodes: [edge2]\n    serviceSelectors: [{matchLabels: {app: web}}]\n"},
			want: []string{"edged.yaml:8: l2Advertisements[1].serviceSelectors", `change which edge hosts may announce pool "primary"`, "per pool"}},
		{name: "manifest nodeSelectors", files: map[string]string{
			"edged.yaml": "metallbManifests: [ads.yaml]\n" + minimal,
			"ads.yaml":   "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec:\n  nodeSelectors:\n    - matchLabels: {kubernetes.io/hostname: n1}\n"},
			want: []string{"ads.yaml:6: L2Advertisement \"l2\" spec.nodeSelectors", "l2Advertisements[].nodes in edged.yaml"}},
		{name: "manifest preferredNodeSelectors", files: map[string]string{
			"edged.yaml": "metallbManifests: [ads.yaml]\n" + minimal,
			"ads.yaml":   "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec:\n  preferredNodeSelectors:\n    - weight: 50\n      preference: {matchLabels: {zone: a}}\n"},
			want: []string{"ads.yaml:6: L2Advertisement \"l2\" spec.preferredNodeSelectors", "edge hosts", "l2Advertisements[].nodes in edged.yaml"}},
		{name: "node not a peer", files: map[string]string{"edged.yaml": "node: {name: edge9}\nraft:\n  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}, {id: edge2, address: \"10.0.0.2:7950\"}]\n" + minimal},
			want: []string{"edged.yaml:1: node.name", `"edge9" is not one of raft.peers[].id (edge1, edge2)`}},
		{name: "hostname not a peer", files: map[string]string{"edged.yaml": "raft:\n  insecurePlaintext: true\n  peers: [{id: edge-not-this-host, address: \"10.0.0.1:7950\"}]\n" + minimal},
			want: []string{"edged.yaml:", "node.name", "(the hostname: node.name is not set) is not one of raft.peers[].id (edge-not-this-host)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, err := Load(filepath.Join(dir, "edged.yaml"))
			if err == nil {
				t.Fatal("Load accepted bad input")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := strings.ReplaceAll(err.Error(), dir+"/", "")
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// stats returns the minimal config with a haproxy.stats section holding
// lines, from line 4 on.
func stats(lines ...string) string {
	return "haproxy:\n  stats:\n    bind: 127.0.0.1:8404\n    " + strings.Join(lines, "\n    ") + "\n" + minimal
}

// TestHAProxySettingsAccepted: settings every render accepts load.
func TestHAProxySettingsAccepted(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": stats("uri: /haproxy/stats", "user: admin", "password: s3cret.pw-2026") +
		"node: {name: edge1}\nraft:\n  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}]\n"})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Bind: "127.0.0.1:8404", URI: "/haproxy/stats", User: "admin", Password: "s3cret.pw-2026", Refresh: DefaultStatsRefresh}
	if diff := cmp.Diff(want, cfg.HAProxy.Stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read config: no such file or directory") {
		t.Fatalf("error = %v", err)
	}
}

// TestExampleConfigs: everything shipped in configs/ validates, and the
// reference pool has the 1,279 addresses the cluster really has (MetalLB's
// "1,280 available" is one too many).
func TestExampleConfigs(t *testing.T) {
	for _, name := range []string{"edged.yaml", "edged-metallb.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(filepath.Join("..", "..", "configs", name))
			if err != nil {
				t.Fatal(err)
			}
			sum, err := cfg.Summary()
			if err != nil {
				t.Fatal(err)
			}
			if sum[0].Name != "primary" || sum[0].V4 != 1279 || sum[0].Advertisements[0] != "primary (eth0)" {
				t.Errorf("summary = %+v", sum)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{minimal, "pools: [{name: a, addresses: [::/0]}]", "raft: {peers: [{id: a}]}\n" + minimal, "{", "- a\n- b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(t.TempDir(), "edged.yaml")
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File == "" {
				t.Fatalf("error %v is not a *config.Error naming the file", err)
			}
			return
		}
		if len(cfg.LBPools) == 0 {
			t.Fatal("a config without pools was accepted")
		}
	})
}

// TestBackendModeSpellings: haproxy.backendMode takes the annotation's
// values, and the older "nodePort" means "nodeport".
func TestBackendModeSpellings(t *testing.T) {
	for in, want := range map[string]string{"endpoints": "endpoints", "nodeport": "nodeport", "nodePort": "nodeport"} {
		dir := writeFiles(t, map[string]string{"edged.yaml": "haproxy: {backendMode: " + in + "}\n" + minimal +
			"node: {name: edge1}\nraft:\n  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}]\n"})
		cfg, err := Load(filepath.Join(dir, "edged.yaml"))
		if err != nil || cfg.HAProxy.BackendMode != want {
			t.Errorf("backendMode %s: %v, %v; want %s", in, cfg, err, want)
		}
	}
}
