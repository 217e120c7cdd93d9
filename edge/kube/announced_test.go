package kube

import (
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

func TestAnnouncements(t *testing.T) {
	ip := netip.MustParseAddr
	v := raft.View{
		Allocations: []lbpool.Allocation{
			{Key: "ns/web", Pool: "lab", IPs: []netip.Addr{ip("10.0.0.1")}, ServiceLabels: map[string]string{"app": "web"}},
			{Key: "ns/dual", Pool: "lab", IPs: []netip.Addr{ip("10.0.0.2"), ip("fd00::2")}},
			{Key: "ns/lonely", Pool: "lab", IPs: []netip.Addr{ip("10.0.0.3")}},
			{Key: lbpool.StaticKey("stats"), Pool: "static", IPs: []netip.Addr{ip("10.0.0.9")}},
		},
		Assignments: []raft.IPAssignment{
			{IP: ip("10.0.0.1"), Assignment: raft.Assignment{Owner: "edge2"}},
			{IP: ip("10.0.0.2"), Assignment: raft.Assignment{Owner: "edge1"}},
			{IP: ip("fd00::2"), Assignment: raft.Assignment{Owner: "edge3"}},
			{IP: ip("10.0.0.9"), Assignment: raft.Assignment{Owner: "edge1"}},
		},
	}
	got := announcements(v)
	want := map[string]announced{
		"ns/web":    {Pool: "lab", Labels: map[string]string{"app": "web"}, IPs: []announcement{{ip("10.0.0.1"), "edge2"}}},
		"ns/dual":   {Pool: "lab", IPs: []announcement{{ip("10.0.0.2"), "edge1"}, {ip("fd00::2"), "edge3"}}},
		"ns/lonely": {Pool: "lab", IPs: []announcement{{ip("10.0.0.3"), ""}}},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("announcements (-want +got):\n%s", d)
	}
	tests := []struct {
		name, key, value string
		msgs             []string
	}{
		{name: "one host", key: "ns/web", value: "edge2",
			msgs: []string{`announcing from node "edge2" with protocol "layer2": 10.0.0.1`}},
		{name: "dual stack on two hosts", key: "ns/dual", value: "edge1,edge3",
			msgs: []string{`announcing from node "edge1" with protocol "layer2": 10.0.0.2`, `announcing from node "edge3" with protocol "layer2": fd00::2`}},
		{name: "no eligible host", key: "ns/lonely", value: "", msgs: nil},
		{name: "not allocated", key: "ns/none", value: "", msgs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := announcingValue(got[tt.key].IPs); got != tt.value {
				t.Errorf("announcingValue = %q, want %q", got, tt.value)
			}
			if d := cmp.Diff(tt.msgs, nodeAssignedMessages(got[tt.key].IPs)); d != "" {
				t.Errorf("messages (-want +got):\n%s", d)
			}
		})
	}
}

func TestChangedKeys(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	a := func(host string) announced { return announced{Pool: "p", IPs: []announcement{{ip, host}}} }
	old := map[string]announced{"ns/same": a("edge1"), "ns/moved": a("edge1"), "ns/gone": a("edge2"),
		"ns/relabelled": {Pool: "p", IPs: []announcement{{ip, "edge1"}}, Labels: map[string]string{"x": "1"}}}
	cur := map[string]announced{"ns/same": a("edge1"), "ns/moved": a("edge3"), "ns/new": a("edge2"),
		"ns/relabelled": {Pool: "p", IPs: []announcement{{ip, "edge1"}}, Labels: map[string]string{"x": "2"}}}
	want := []string{"ns/gone", "ns/moved", "ns/new", "ns/relabelled"}
	if d := cmp.Diff(want, changedKeys(old, cur)); d != "" {
		t.Errorf("changedKeys (-want +got):\n%s", d)
	}
	if got := changedKeys(cur, cur); len(got) != 0 {
		t.Errorf("changedKeys of an unchanged state = %v, want none (a resync writes nothing)", got)
	}
}

func TestCountersOf(t *testing.T) {
	tests := []struct {
		name string
		in   lbpool.PoolStats
		want poolCounters
	}{
		{name: "reference pool", in: lbpool.PoolStats{TotalV4: 1279, InUseV4: 3},
			want: poolCounters{AssignedIPv4: 3, AvailableIPv4: 1276}},
		{name: "huge IPv6 pool clamps", in: lbpool.PoolStats{TotalV6: math.MaxUint64, InUseV6: 2},
			want: poolCounters{AssignedIPv6: 2, AvailableIPv6: math.MaxInt64}},
		{name: "more in use than the shrunk pool holds", in: lbpool.PoolStats{TotalV4: 2, InUseV4: 5},
			want: poolCounters{AssignedIPv4: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, countersOf(tt.in)); d != "" {
				t.Errorf("countersOf (-want +got):\n%s", d)
			}
		})
	}
}

func TestOlderThan(t *testing.T) {
	tests := []struct {
		rv, after string
		want      bool
	}{
		{"99", "100", true},
		{"100", "100", false},
		{"101", "100", false},
		{"", "100", false},    // unparsable: trust the cache
		{"abc", "100", false}, // same
	}
	for _, tt := range tests {
		if got := olderThan(tt.rv, tt.after); got != tt.want {
			t.Errorf("olderThan(%q, %q) = %t, want %t", tt.rv, tt.after, got, tt.want)
		}
	}
}
