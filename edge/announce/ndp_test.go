package announce

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	vip6  = netip.MustParseAddr("fd00:77::200")
	peer6 = netip.MustParseAddr("fd00:77::2")
)

func mustNS(t testing.TB, target netip.Addr, lla []byte) []byte {
	t.Helper()
	ns := &ndp.NeighborSolicitation{TargetAddress: target}
	if lla != nil {
		ns.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: lla}}
	}
	b, err := ndp.MarshalMessage(ns)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withTarget overwrites the target address of a marshalled solicitation
// (ICMPv6 header 4 bytes, reserved 4, then the target).
func withTarget(b []byte, ip netip.Addr) []byte {
	a := ip.As16()
	copy(b[8:24], a[:])
	return b
}

func TestHandleNDP(t *testing.T) {
	a := NewResponder()
	a.SetLeases([]Lease{{IP: vip6, Until: t0.Add(time.Second)}, {IP: vip, Until: t0.Add(time.Second)}})
	na, _ := ndp.MarshalMessage(advertisement(peerHW, vip6, false))
	mapped := netip.AddrFrom16(vip.As16())
	tests := []struct {
		name     string
		b        []byte
		src      netip.Addr
		hop      int
		now      time.Time
		why      Reason
		wantDst  netip.Addr
		wantSoli bool
	}{
		{"answer", mustNS(t, vip6, peerHW), peer6, 255, t0, ReasonAnswer, peer6, true},
		{"unicast probe without option", mustNS(t, vip6, nil), peer6, 255, t0, ReasonAnswer, peer6, true},
		{"duplicate address detection", mustNS(t, vip6, nil), netip.IPv6Unspecified(), 255, t0, ReasonAnswer, allNodes, false},
		{"forwarded (hop limit)", mustNS(t, vip6, peerHW), peer6, 64, t0, ReasonNotRequest, netip.Addr{}, false},
		{"advertisement", na, peer6, 255, t0, ReasonNotRequest, netip.Addr{}, false},
		{"garbage", []byte{135, 0, 1}, peer6, 255, t0, ReasonNotRequest, netip.Addr{}, false},
		{"own frame", mustNS(t, vip6, ourHW), peer6, 255, t0, ReasonOwnFrame, netip.Addr{}, false},
		{"not owned", mustNS(t, netip.MustParseAddr("fd00:77::201"), peerHW), peer6, 255, t0, ReasonNotOwned, netip.Addr{}, false},
		{"expired", mustNS(t, vip6, peerHW), peer6, 255, t0.Add(time.Second), ReasonLeaseExpired, netip.Addr{}, false},
		// mdlayher/ndp refuses an IPv4-mapped target when parsing already.
		{"v4-mapped target", withTarget(mustNS(t, vip6, peerHW), mapped), peer6, 255, t0, ReasonNotRequest, netip.Addr{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, dst, why := a.handleNDP(tc.b, tc.src.WithZone("eth0"), tc.hop, tc.now, upIface)
			if why != tc.why {
				t.Fatalf("reason = %v, want %v", why, tc.why)
			}
			if tc.why != ReasonAnswer {
				if got != nil {
					t.Fatalf("answered: %+v", got)
				}
				return
			}
			want := &ndp.NeighborAdvertisement{Solicited: tc.wantSoli, Override: true, TargetAddress: vip6,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ourHW}}}
			opt := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Errorf("advertisement (-want +got):\n%s", diff)
			}
			if dst != tc.wantDst {
				t.Errorf("destination %s, want %s", dst, tc.wantDst)
			}
		})
	}
}

func TestHandleNDPCountsAndStop(t *testing.T) {
	a := NewResponder()
	a.SetLeases([]Lease{{IP: vip6, Until: t0.Add(time.Second), Interfaces: []string{"eth0"}}})
	before := testutil.ToFloat64(requestsReceived.WithLabelValues(vip6.String()))
	eth0 := Iface{Name: "eth0", HW: ourHW, Up: true}
	if na, _, why := a.handleNDP(mustNS(t, vip6, peerHW), peer6, 255, t0, eth0); na == nil {
		t.Fatalf("not answered: %v", why)
	}
	if got := testutil.ToFloat64(requestsReceived.WithLabelValues(vip6.String())); got != before+1 {
		t.Errorf("requests_received = %v, want %v", got, before+1)
	}
	if _, _, why := a.handleNDP(mustNS(t, vip6, peerHW), peer6, 255, t0, Iface{Name: "eth1", HW: ourHW, Up: true}); why != ReasonNotAdvertised {
		t.Errorf("on eth1: %v, want %v", why, ReasonNotAdvertised)
	}
	if _, _, why := a.handleNDP(mustNS(t, vip6, peerHW), peer6, 255, t0, Iface{Name: "eth0", HW: ourHW}); why != ReasonIfaceDown {
		t.Errorf("link down: %v, want %v", why, ReasonIfaceDown)
	}
	a.Stop()
	if na, _, _ := a.handleNDP(mustNS(t, vip6, peerHW), peer6, 255, t0, eth0); na != nil {
		t.Error("answered after Stop")
	}
}

func FuzzHandleNDP(f *testing.F) {
	f.Add(mustNS(f, vip6, peerHW), uint8(255))
	f.Add(mustNS(f, vip6, nil), uint8(255))
	f.Add([]byte{}, uint8(0))
	a := NewResponder()
	a.SetLeases([]Lease{{IP: vip6, Until: t0.Add(time.Second)}, {IP: vip, Until: t0.Add(time.Second)}})
	f.Fuzz(func(t *testing.T, b []byte, hop uint8) {
		na, dst, why := a.handleNDP(b, peer6, int(hop), t0, upIface)
		if (na != nil) != (why == ReasonAnswer) {
			t.Fatalf("answer %v with reason %v", na != nil, why)
		}
		if na != nil && (na.TargetAddress != vip6 || !na.Override || dst != peer6) {
			t.Fatalf("bad answer %+v to %s", na, dst)
		}
	})
}
