package edge

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/lbpool"
)

func TestStaleStatic(t *testing.T) {
	a := netip.MustParseAddr
	want := lbpool.StaticRequests([]lbpool.Pool{lbpool.StaticPool("stats", a("10.4.10.5"))})
	have := []lbpool.Allocation{
		{Key: "edged-static:api", IPs: []netip.Addr{a("10.4.10.6")}},
		{Key: "edged-static:stats", IPs: []netip.Addr{a("10.4.10.5")}},
		{Key: "monitoring/grafana", IPs: []netip.Addr{a("10.4.11.0")}}, // a Service's: never released here
	}
	if diff := cmp.Diff([]string{"edged-static:api"}, staleStatic(want, have)); diff != "" {
		t.Errorf("staleStatic (-want +got):\n%s", diff)
	}
}

// TestStaticOnly: while the pool source does not know the Service pools,
// the state's Service pools stay and only the static ones follow the
// config.
func TestStaticOnly(t *testing.T) {
	a := netip.MustParseAddr
	primary := lbpool.Pool{Name: "primary", AutoAssign: true, Ranges: []lbpool.Range{{First: a("10.4.11.0"), Last: a("10.4.15.254")}}}
	old := lbpool.StaticPool("old", a("10.4.10.9"))
	stats := lbpool.StaticPool("stats", a("10.4.10.5"))
	pools, elig := staticOnly(
		[]lbpool.Pool{primary, old}, map[string][]string{"primary": {"edge1"}, old.Name: {"edge2"}},
		[]lbpool.Pool{{Name: "file-pool"}, stats}, map[string][]string{"file-pool": {"edge9"}, stats.Name: {"edge3"}})
	if want := []lbpool.Pool{primary, stats}; !lbpool.PoolsEqual(want, pools) {
		t.Errorf("pools = %+v, want primary and stats", pools)
	}
	if diff := cmp.Diff(map[string][]string{"primary": {"edge1"}, stats.Name: {"edge3"}}, elig); diff != "" {
		t.Errorf("eligibility (-want +got):\n%s", diff)
	}
}
