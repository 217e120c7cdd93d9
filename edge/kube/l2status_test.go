package kube

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/config"
)

func TestPlanL2(t *testing.T) {
	const ns, svc = "apps", "web"
	name := func(node string) string { return l2Name(ns, svc, node) }
	st := func(node string, ifs ...string) l2Status {
		return l2Status{Node: node, ServiceName: svc, ServiceNamespace: ns, Interfaces: ifs}
	}
	have := func(node string, status l2Status) l2Have {
		return l2Have{Name: name(node), Labels: l2Labels(ns, svc, node), Status: status}
	}
	tests := []struct {
		name string
		want []l2Want
		have []l2Have
		plan l2Plan
	}{
		{name: "first announcer: create, then status",
			want: []l2Want{{Node: "edge1", Interfaces: []string{"eth0"}}},
			plan: l2Plan{Write: []l2Write{{Name: name("edge1"), Create: true, Status: st("edge1", "eth0")}}}},
		{name: "current: nothing to write",
			want: []l2Want{{Node: "edge1", Interfaces: []string{"eth0"}}},
			have: []l2Have{have("edge1", st("edge1", "eth0"))}},
		{name: "created but status not written yet (edged stopped in between)",
			want: []l2Want{{Node: "edge1"}},
			have: []l2Have{have("edge1", l2Status{})},
			plan: l2Plan{Write: []l2Write{{Name: name("edge1"), Status: st("edge1")}}}},
		{name: "announcer moved: the crashed owner's object deleted, the new one created",
			want: []l2Want{{Node: "edge3"}},
			have: []l2Have{have("edge1", st("edge1"))},
			plan: l2Plan{Delete: []string{name("edge1")}, Write: []l2Write{{Name: name("edge3"), Create: true, Status: st("edge3")}}}},
		{name: "interfaces changed: status patched",
			want: []l2Want{{Node: "edge1", Interfaces: []string{"eth1"}}},
			have: []l2Have{have("edge1", st("edge1", "eth0"))},
			plan: l2Plan{Write: []l2Write{{Name: name("edge1"), Status: st("edge1", "eth1")}}}},
		{name: "no announcer: everything deleted",
			have: []l2Have{have("edge1", st("edge1")), have("edge2", st("edge2"))},
			plan: l2Plan{Delete: []string{name("edge1"), name("edge2")}}},
		{name: "a forged object with edged's label but another name is deleted",
			want: []l2Want{{Node: "edge1"}},
			have: []l2Have{have("edge1", st("edge1")), {Name: "l2-forged", Labels: l2Labels(ns, svc, "edge1"), Status: st("edge1")}},
			plan: l2Plan{Delete: []string{"l2-forged"}}},
		{name: "an immutable field names another node: recreated",
			want: []l2Want{{Node: "edge1"}},
			have: []l2Have{have("edge1", st("edge9"))},
			plan: l2Plan{Delete: []string{name("edge1")}, Write: []l2Write{{Name: name("edge1"), Create: true, Status: st("edge1")}}}},
		{name: "dual stack on two hosts: one object each",
			want: []l2Want{{Node: "edge1"}, {Node: "edge3"}},
			have: []l2Have{have("edge3", st("edge3"))},
			plan: l2Plan{Write: []l2Write{{Name: name("edge1"), Create: true, Status: st("edge1")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.plan, planL2(ns, svc, tt.want, tt.have)); d != "" {
				t.Errorf("planL2 (-want +got):\n%s", d)
			}
		})
	}
}

func TestL2Name(t *testing.T) {
	a, b := l2Name("ns", "web", "edge1"), l2Name("ns", "web", "edge2")
	if a == b || a != l2Name("ns", "web", "edge1") || len(a) != len("l2-")+16 || a[:3] != "l2-" {
		t.Errorf("l2Name: %q, %q: want stable, distinct per node, l2- + 16 hex", a, b)
	}
}

// TestL2Interfaces: a ServiceL2Status names the interfaces the pool's
// advertisements name for the announcing host, never this host's own
// announce.interfaces (which the announcing host's edged.yaml may not share).
func TestL2Interfaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edged.yaml")
	if err := os.WriteFile(path, []byte(`node: {name: edge1}
announce: {interfaces: [eth9]}
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
  - {name: c, addresses: [10.0.3.0/24]}
l2Advertisements:
  - {name: a1, ipAddressPools: [a], interfaces: [eth1]}
  - {name: a2, ipAddressPools: [a], interfaces: [eth0]}
  - {name: b1, ipAddressPools: [b]}
  - {name: c1, ipAddressPools: [c], interfaces: [eth0], nodes: [edge1]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &Announcers{opts: AnnouncersOptions{PoolConfig: func() *config.Config { return cfg }}}
	tests := []struct {
		name, pool, host string
		want             []string
	}{
		{"two advertisements, sorted", "a", "edge2", []string{"eth0", "eth1"}},
		{"none named: the host's choice, not ours", "b", "edge2", nil},
		{"advertisement for another host", "c", "edge2", nil},
		{"advertisement for this host", "c", "edge1", []string{"eth0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, a.interfaces(announced{Pool: tt.pool}, tt.host)); d != "" {
				t.Errorf("interfaces (-want +got):\n%s", d)
			}
		})
	}
	if cfg.Node.Name != "edge1" || len(cfg.Announce.Interfaces) != 1 {
		t.Errorf("interfaces changed the config in force: node %q, announce.interfaces %v", cfg.Node.Name, cfg.Announce.Interfaces)
	}
}
