package raft

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func hostsUp(ids ...string) []HostState {
	var out []HostState
	for _, id := range ids {
		out = append(out, HostState{ID: id, Healthy: true})
	}
	return out
}

func TestPickOwner(t *testing.T) {
	ip := netip.MustParseAddr("10.4.11.7")
	winner := PickOwner(ip, "p", hostsUp("a", "b", "c"), nil)
	tests := []struct {
		name  string
		hosts []HostState
		elig  map[string][]string
		want  string
	}{
		{"no hosts", nil, nil, ""},
		{"single host", hostsUp("a"), nil, "a"},
		{"unhealthy skipped", []HostState{{ID: "a"}, {ID: "b", Healthy: true}}, nil, "b"},
		{"draining skipped", []HostState{{ID: "a", Healthy: true, Draining: true}, {ID: "b", Healthy: true}}, nil, "b"},
		{"all unhealthy", []HostState{{ID: "a"}, {ID: "b"}}, nil, ""},
		{"eligibility restricts", hostsUp("a", "b", "c"), map[string][]string{"p": {"c"}}, "c"},
		{"eligibility for other pool ignored", hostsUp("a", "b", "c"), map[string][]string{"q": {"c"}}, winner},
		{"empty allow list allows all", hostsUp("a", "b", "c"), map[string][]string{"p": {}}, winner},
		{"eligible host down", []HostState{{ID: "a", Healthy: true}, {ID: "c"}}, map[string][]string{"p": {"c"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PickOwner(ip, "p", tt.hosts, tt.elig)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("PickOwner (-want +got):\n%s", d)
			}
		})
	}
}

// TestPickOwnerSpreadAndStability checks the two properties rendezvous
// hashing is chosen for: the reference pool spreads evenly over hosts, and
// a host leaving moves only its own IPs (joining moves only what it wins).
func TestPickOwnerSpreadAndStability(t *testing.T) {
	var ips []netip.Addr
	for ip := netip.MustParseAddr("10.4.11.0"); ip.Compare(netip.MustParseAddr("10.4.15.254")) <= 0; ip = ip.Next() {
		ips = append(ips, ip)
	}
	five := hostsUp("h1", "h2", "h3", "h4", "h5")
	before := map[netip.Addr]string{}
	count := map[string]int{}
	for _, ip := range ips {
		o := PickOwner(ip, "p", five, nil)
		before[ip] = o
		count[o]++
	}
	mean := len(ips) / len(five)
	for h, n := range count {
		if n < mean*8/10 || n > mean*12/10 {
			t.Errorf("%s owns %d of %d IPs, want within 20%% of %d", h, n, len(ips), mean)
		}
	}
	four := hostsUp("h1", "h2", "h3", "h5")
	moved := 0
	for _, ip := range ips {
		o := PickOwner(ip, "p", four, nil)
		if before[ip] != "h4" && o != before[ip] {
			t.Fatalf("%s moved %s -> %s although only h4 left", ip, before[ip], o)
		}
		if o != before[ip] {
			moved++
		}
	}
	if d := cmp.Diff(count["h4"], moved); d != "" {
		t.Errorf("IPs moved when h4 left (-want +got):\n%s", d)
	}
}
