package l2

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/config"
)

// selectiveYAML has a pool announced on eth0 for every Service and on eth1
// too for Services labelled app=web, and a pool announced only for app=dns.
const selectiveYAML = `node: {name: edge1}
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
l2Advertisements:
  - {name: all, ipAddressPools: [a], interfaces: [eth0]}
  - {name: web, ipAddressPools: [a], interfaces: [eth1], serviceSelectors: [{matchLabels: {app: web}}]}
  - {name: dns, ipAddressPools: [b], interfaces: [eth2], serviceSelectors: [{matchLabels: {app: dns}}]}
`

// TestServiceSelectorsScope: an advertisement with serviceSelectors adds
// its interfaces only for IPs whose Services match, and a Service relabelled
// while its IP stays leased moves its announcement within the next
// SetLeases (a renewal), with no change to lo; unchanged labels only renew.
func TestServiceSelectorsScope(t *testing.T) {
	cfg := mustConfig(t, selectiveYAML)
	var mu sync.Mutex
	labels := map[netip.Addr][]map[string]string{}
	set := func(ip string, l map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		labels[netip.MustParseAddr(ip)] = []map[string]string{l}
	}
	lookup := func(ip netip.Addr) []map[string]string { mu.Lock(); defer mu.Unlock(); return labels[ip] }
	r := &recorder{}
	s := startedSpeaker(t, func() *config.Config { return cfg }, r)
	s.UseServiceLabels(lookup)
	until := time.Now().Add(time.Minute)

	set("10.0.1.5", map[string]string{"app": "db"})
	set("10.0.2.5", map[string]string{"app": "db"})
	steps := []struct {
		name  string
		apply func()
		ips   []netip.Addr
		want  []string
	}{
		{"no match: the plain advertisement only, the dns pool not announced", nil, addrs("10.0.1.5", "10.0.2.5"),
			[]string{"lo [10.0.1.5 10.0.2.5]", "announce [10.0.1.5[eth0]]"}},
		{"renewal, labels unchanged", nil, addrs("10.0.1.5", "10.0.2.5"), []string{"renew"}},
		{"relabelled app=web: eth1 too", func() { set("10.0.1.5", map[string]string{"app": "web"}) }, addrs("10.0.1.5", "10.0.2.5"),
			[]string{"announce [10.0.1.5[eth0 eth1]]"}},
		{"relabelled app=dns: its pool announced", func() { set("10.0.2.5", map[string]string{"app": "dns"}) }, addrs("10.0.1.5", "10.0.2.5"),
			[]string{"announce [10.0.1.5[eth0 eth1] 10.0.2.5[eth2]]"}},
		{"renewal again", nil, addrs("10.0.1.5", "10.0.2.5"), []string{"renew"}},
	}
	for _, st := range steps {
		if st.apply != nil {
			st.apply()
		}
		s.SetLeases(st.ips, until)
		if diff := cmp.Diff(st.want, r.take()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}

	// Without a labels source the selective advertisements announce nothing.
	scope := leaseScope(cfg, nil)
	if ifaces, ok, _ := scope(netip.MustParseAddr("10.0.1.5")); !ok || !cmp.Equal(ifaces, []string{"eth0"}) {
		t.Errorf("scope without labels = %v, %v; want [eth0], true", ifaces, ok)
	}
	if _, ok, in := scope(netip.MustParseAddr("10.0.2.5")); ok || !in {
		t.Errorf("dns pool without labels: announced=%v inPool=%v; want false, true", ok, in)
	}
}
