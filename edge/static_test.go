package edge_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/wait"
)

// TestStaticVIPsWithoutKubernetes: three appliances with real raft and no
// Kubernetes part. Each static VIP of edged.yaml is allocated by the
// leader and leased to exactly one host (one restricted by nodes to that
// host), `edged status` lists them with their holder apart from the
// Services, the lease intervals of two hosts never overlap, and a static
// VIP removed from the file (Reload, as on SIGHUP) is released and no
// longer announced while the other stays.
func TestStaticVIPsWithoutKubernetes(t *testing.T) {
	const statsLine = "  - {name: stats, address: 10.4.10.5}\n"
	hosts := startClusterWith(t, "staticVIPs:\n"+statsLine+"  - {name: api, address: 10.4.10.6, nodes: [edge3]}\n")
	stats, api := netip.MustParseAddr("10.4.10.5"), netip.MustParseAddr("10.4.10.6")
	announcers := func(ip netip.Addr) []string {
		var out []string
		now := time.Now()
		for _, h := range hosts {
			if h.ann.announcing(ip, now) {
				out = append(out, h.name)
			}
		}
		return out
	}
	var statsHolder string
	wait.For(t, 20*time.Second, "each static VIP announced by exactly one host, api by edge3", func() (bool, string) {
		s, a := announcers(stats), announcers(api)
		if len(s) == 1 {
			statsHolder = s[0]
		}
		return len(s) == 1 && len(a) == 1 && a[0] == "edge3", fmt.Sprintf("stats by %v, api by %v", s, a)
	})

	wantStatus := []admin.StaticVIP{{Name: "api", IP: "10.4.10.6", Holder: "edge3"}, {Name: "stats", IP: "10.4.10.5", Holder: statsHolder}}
	var st admin.Status
	wait.For(t, 5*time.Second, "edged status listing both static VIPs with their holders", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		if st, err = admin.Fetch(ctx, hosts[0].admin); err != nil {
			return false, err.Error()
		}
		return cmp.Diff(wantStatus, st.StaticVIPs) == "", cmp.Diff(wantStatus, st.StaticVIPs)
	})
	if len(st.Allocations) != 0 {
		t.Errorf("status lists static VIPs as Services: %+v", st.Allocations)
	}

	for _, h := range hosts {
		text, err := os.ReadFile(h.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h.path, []byte(strings.Replace(string(text), statsLine, "", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := h.app.Reload(); err != nil {
			t.Fatalf("%s: Reload: %v", h.name, err)
		}
	}
	l := leader(t, hosts)
	wait.For(t, 10*time.Second, "stats released and announced by nobody, api still by edge3", func() (bool, string) {
		_, held := l.app.Store().Lookup(lbpool.StaticKey("stats"))
		s, a := announcers(stats), announcers(api)
		return !held && len(s) == 0 && len(a) == 1 && a[0] == "edge3", fmt.Sprintf("stats allocated %t, by %v; api by %v", held, s, a)
	})
	if got := poolNames(l.app); !cmp.Equal(got, []string{"primary", "edged-static:api"}) {
		t.Errorf("pools in raft = %v, want [primary edged-static:api]", got)
	}

	all := map[netip.Addr][]segment{}
	for _, h := range hosts {
		for ip, segs := range h.ann.segments() {
			all[ip] = append(all[ip], segs...)
		}
	}
	for ip, segs := range all {
		if err := checkNoOverlap(segs); err != nil {
			t.Errorf("%v: %v", ip, err)
		}
	}
}

// TestStaticVIPWithMetalLBCRDs: with MetalLB's objects as the pool source,
// the leader writes the static VIP's pool after the file's and the
// cluster's pools and allocates it; a Service still gets its address from
// a MetalLB pool, and one that asks for the static address is refused.
func TestStaticVIPWithMetalLBCRDs(t *testing.T) {
	e := startCRDEnv(t, "staticVIPs:\n  - {name: stats, address: 10.4.10.5}\n")
	e.applyPool(t, "crd", "192.168.60.0/30")
	e.waitPools(t, "primary, crd and the static pool in raft", func(p map[string]string) bool {
		return p["crd"] != "" && p["primary"] != "" && p["edged-static:stats"] == "10.4.10.5"
	})
	wait.For(t, kubeWait, "the static VIP allocated", func() (bool, string) {
		a, ok := e.app.Store().Lookup(lbpool.StaticKey("stats"))
		return ok && len(a.IPs) == 1 && a.IPs[0] == netip.MustParseAddr("10.4.10.5"), fmt.Sprint(a)
	})
	e.service(t, "web", "crd")
	e.waitIP(t, "web", "192.168.60.")
	e.service(t, "grab", lbpool.StaticKey("stats"))
	e.waitEvent(t, e.ns, "grab", "AllocationFailed", "does not serve this service")
	if a, _ := e.app.Store().Lookup(lbpool.StaticKey("stats")); len(a.IPs) != 1 || a.IPs[0] != netip.MustParseAddr("10.4.10.5") {
		t.Errorf("static allocation after a Service asked for its pool = %+v", a)
	}
}
