package edgelab

import (
	"net/netip"
	"testing"

	"github.com/goldentooth/edged/test/wait"
)

// TestStaticVIP: a static VIP of edged.yaml (staticVIPs), with no Service
// in the cluster, is answered over ARP by exactly one host, the one the
// raft state assigns it to; kill -9 of that host (SIGKILL + link down)
// moves it to another host, and the client's HTTP gap is logged; a
// partition of its holder never has one ARP request answered by two MACs.
func TestStaticVIP(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver)")
	}
	l := New(t, Options{StaticVIP: true})
	ip := netip.MustParseAddr(StaticVIP)
	if err := l.ServeVIP(ip); err != nil {
		t.Fatal(err)
	}
	t.Run("answered by exactly its holder", func(t *testing.T) { testStaticAnswered(t, l, ip) })
	t.Run("kill -9 of the holder moves it", func(t *testing.T) {
		testTakeover(t, l, []netip.Addr{staticHolderFollower(t, l, ip)}, l.Crash)
	})
	t.Run("partition of the holder has no split brain", func(t *testing.T) {
		testPartition(t, l, []netip.Addr{staticHolderFollower(t, l, ip)})
	})
}

// testStaticAnswered checks the static VIP's place in `edged status` and
// that arping from the client gets exactly its holder's MAC.
func testStaticAnswered(t *testing.T, l *Lab, ip netip.Addr) {
	st, err := l.WaitStable(healthyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.StaticVIPs) != 1 || st.StaticVIPs[0].Name != StaticVIPName || st.StaticVIPs[0].IP != StaticVIP || st.StaticVIPs[0].Holder == "" {
		t.Fatalf("status static VIPs = %+v, want %s at %s with a holder", st.StaticVIPs, StaticVIPName, StaticVIP)
	}
	if len(st.Allocations) != 0 {
		t.Errorf("status lists the static VIP as a Service: %+v", st.Allocations)
	}
	testArping(t, l, []netip.Addr{ip})
	if h := l.Holder(ip); h == nil || h.ID != st.StaticVIPs[0].Holder {
		t.Errorf("lease held by %v, want the assigned %s", h, st.StaticVIPs[0].Holder)
	}
}

// staticHolderFollower makes sure the static VIP's holder is not the raft
// leader, by moving leadership away from it, so the tests below measure
// the holder's fault alone (the README's Service VIP rows are of a
// follower owner too; a leader holder adds the election). It returns ip.
func staticHolderFollower(t *testing.T, l *Lab, ip netip.Addr) netip.Addr {
	t.Helper()
	if _, err := l.WaitStable(healthyTimeout); err != nil {
		t.Fatal(err)
	}
	owner, err := l.Owner(ip)
	if err != nil {
		t.Fatal(err)
	}
	leader, err := l.Leader()
	if err != nil {
		t.Fatal(err)
	}
	if owner != leader {
		return ip
	}
	if out, err := l.Exec(leader.Host, l.Edged(), "members", "transfer-leadership", "--socket", leader.Socket); err != nil {
		t.Fatalf("transfer leadership away from %s: %v: %s", leader.ID, err, out)
	}
	wait.For(t, healthyTimeout, "a leader other than the static VIP's holder "+owner.ID, func() (bool, string) {
		l2, err := l.Leader()
		if err != nil {
			return false, err.Error()
		}
		o, err := l.Owner(ip)
		if err != nil {
			return false, err.Error()
		}
		return l2 != o, "leader " + l2.ID + ", holder " + o.ID
	})
	if _, err := l.WaitStable(healthyTimeout); err != nil {
		t.Fatal(err)
	}
	return ip
}
