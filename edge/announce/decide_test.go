package announce

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	ourHW   = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	peerHW  = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	vip     = netip.MustParseAddr("10.4.11.1")
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	upIface = Iface{HW: ourHW, Up: true}
)

func TestShouldAnswer(t *testing.T) {
	vip6 := netip.MustParseAddr("fd00:77::200")
	leases := map[netip.Addr]held{
		vip:  {until: t0.Add(time.Second)},
		vip6: {until: t0.Add(time.Second), ifaces: []string{"eth0"}},
	}
	req := Frame{Request: true, SenderHW: peerHW, Target: vip}
	ns := Frame{Request: true, SenderHW: peerHW, Target: vip6, NDP: true}
	eth0 := Iface{Name: "eth0", HW: ourHW, Up: true}
	eth1 := Iface{Name: "eth1", HW: ourHW, Up: true}
	tests := []struct {
		name string
		f    Frame
		now  time.Time
		ifc  Iface
		want bool
		why  Reason
	}{
		{"answer", req, t0, upIface, true, ReasonAnswer},
		{"reply ignored", Frame{SenderHW: peerHW, Target: vip}, t0, upIface, false, ReasonNotRequest},
		{"own frame", Frame{Request: true, SenderHW: ourHW, Target: vip}, t0, upIface, false, ReasonOwnFrame},
		{"down", req, t0, Iface{HW: ourHW}, false, ReasonIfaceDown},
		{"noarp", req, t0, Iface{HW: ourHW, Up: true, NoARP: true}, false, ReasonIfaceNoARP},
		{"bond", req, t0, Iface{HW: ourHW, Up: true, BondMember: true}, false, ReasonBondMember},
		{"not owned", Frame{Request: true, SenderHW: peerHW, Target: netip.MustParseAddr("10.4.11.2")}, t0, upIface, false, ReasonNotOwned},
		{"expired at Until", req, t0.Add(time.Second), upIface, false, ReasonLeaseExpired},
		{"ndp answer", ns, t0, eth0, true, ReasonAnswer},
		{"ndp not advertised here", ns, t0, eth1, false, ReasonNotAdvertised},
		{"ndp expired", ns, t0.Add(2 * time.Second), eth0, false, ReasonLeaseExpired},
		{"ndp own frame", Frame{Request: true, SenderHW: ourHW, Target: vip6, NDP: true}, t0, eth0, false, ReasonOwnFrame},
		{"ndp without source address option", Frame{Request: true, Target: vip6, NDP: true}, t0, eth0, true, ReasonAnswer},
		{"ndp v4-mapped target", Frame{Request: true, SenderHW: peerHW, Target: netip.AddrFrom16(vip.As16()), NDP: true}, t0, eth0, false, ReasonWrongFamily},
		{"arp v6 target", Frame{Request: true, SenderHW: peerHW, Target: vip6}, t0, eth0, false, ReasonWrongFamily},
		{"arp on any interface when none named", req, t0, eth1, true, ReasonAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := shouldAnswer(tc.f, tc.now, leases, tc.ifc)
			if diff := cmp.Diff([2]any{tc.want, tc.why}, [2]any{got, why}); diff != "" {
				t.Errorf("shouldAnswer (-want +got):\n%s", diff)
			}
		})
	}
}

func mustFrame(t testing.TB, op arp.Operation, sender net.HardwareAddr, target netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, sender, netip.MustParseAddr("10.4.0.9"), ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := p.MarshalBinary()
	ef := ethernet.Frame{Destination: ethernet.Broadcast, Source: sender, EtherType: ethernet.EtherTypeARP, Payload: pb}
	b, err := ef.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleARPLeaseLifecycle(t *testing.T) {
	a := NewResponder()
	b := mustFrame(t, arp.OperationRequest, peerHW, vip)
	if r, why := a.handleARP(b, t0, upIface); r != nil {
		t.Fatalf("answered without lease: %v", why)
	}
	a.SetLeases([]Lease{{IP: vip, Until: t0.Add(time.Second)}})
	before := testutil.ToFloat64(requestsReceived.WithLabelValues(vip.String()))
	r, why := a.handleARP(b, t0, upIface)
	if r == nil {
		t.Fatalf("not answered: %v", why)
	}
	if diff := cmp.Diff(ourHW.String(), r.SenderHardwareAddr.String()); diff != "" {
		t.Errorf("reply MAC (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(requestsReceived.WithLabelValues(vip.String())); got != before+1 {
		t.Errorf("requests_received = %v, want %v", got, before+1)
	}
	if r, _ := a.handleARP(b, t0.Add(2*time.Second), upIface); r != nil {
		t.Error("answered after lease expiry")
	}
	a.Stop()
	if r, _ := a.handleARP(b, t0, upIface); r != nil {
		t.Error("answered after Stop")
	}
}

func TestGratuitousIsRequestForm(t *testing.T) {
	p, err := gratuitous(ourHW, vip)
	if err != nil {
		t.Fatal(err)
	}
	if p.Operation != arp.OperationRequest || p.SenderIP != vip || p.TargetIP != vip {
		t.Errorf("gratuitous = %+v, want request with sender=target=%s", p, vip)
	}
}

func FuzzHandleARP(f *testing.F) {
	f.Add(mustFrame(f, arp.OperationRequest, peerHW, vip))
	f.Add([]byte{})
	a := NewResponder()
	a.SetLeases([]Lease{{IP: vip, Until: t0.Add(time.Second)}})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _ := a.handleARP(b, t0, upIface)
		if r != nil && r.SenderIP != vip {
			t.Fatalf("answered for unowned %s", r.SenderIP)
		}
	})
}

func TestTakeovers(t *testing.T) {
	a, b := netip.MustParseAddr("10.4.11.1"), netip.MustParseAddr("fd00::1")
	live, lapsed := held{until: t0.Add(time.Second)}, held{until: t0}
	tests := []struct {
		name        string
		prev, next  map[netip.Addr]held
		wantTaken   []netip.Addr
		wantChanged bool
	}{
		{"new IPs", nil, map[netip.Addr]held{a: live, b: live}, []netip.Addr{a, b}, true},
		{"renewal is no takeover", map[netip.Addr]held{a: live}, map[netip.Addr]held{a: {until: t0.Add(time.Hour)}}, nil, false},
		{"regained after lapse", map[netip.Addr]held{a: lapsed}, map[netip.Addr]held{a: live}, []netip.Addr{a}, false},
		{"handed an already lapsed lease", nil, map[netip.Addr]held{a: lapsed}, nil, true},
		{"withdrawn", map[netip.Addr]held{a: live}, nil, nil, true},
		{"swapped", map[netip.Addr]held{a: live}, map[netip.Addr]held{b: live}, []netip.Addr{b}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			taken, changed := takeovers(tc.prev, tc.next, t0)
			if diff := cmp.Diff([2]any{tc.wantTaken, tc.wantChanged}, [2]any{taken, changed}, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("takeovers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenew: Renew moves the end of every lease and keeps its interfaces;
// a lapsed lease becomes held again; nothing after Stop.
func TestRenew(t *testing.T) {
	a := NewResponder()
	now := time.Now()
	a.SetLeases([]Lease{{IP: vip, Until: now.Add(-time.Millisecond), Interfaces: []string{"eth0"}}})
	if got := a.heldOn("eth0", now); len(got) != 0 {
		t.Fatalf("lapsed lease held: %v", got)
	}
	a.Renew(now.Add(time.Minute))
	if got := a.heldOn("eth0", time.Now()); len(got) != 1 || got[0] != vip {
		t.Errorf("after Renew held on eth0: %v, want [%s]", got, vip)
	}
	if got := a.heldOn("eth1", time.Now()); len(got) != 0 {
		t.Errorf("Renew widened the interfaces: held on eth1 %v", got)
	}
	a.Renew(now.Add(-time.Second)) // an end in the past lapses it again
	if got := a.heldOn("eth0", time.Now()); len(got) != 0 {
		t.Errorf("Renew to a past end still held: %v", got)
	}
	// Different ends fold into one; snapshot readers run alongside (go
	// test -race checks that Renew never changes what they read).
	other := netip.MustParseAddr("10.4.11.2")
	a.SetLeases([]Lease{{IP: vip, Until: now.Add(-time.Second)}, {IP: other, Until: now.Add(time.Minute)}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			leases, _ := a.snapshot()
			for _, h := range leases {
				_ = h.end()
			}
		}
	}()
	for i := range 1000 {
		a.Renew(time.Now().Add(time.Duration(i+1) * time.Millisecond * 100))
	}
	<-done
	if got := a.heldOn("eth9", time.Now()); len(got) != 2 {
		t.Errorf("after Renew of different ends held: %v, want both", got)
	}
	a.Stop()
	a.Renew(time.Now().Add(time.Minute))
	if got := a.heldOn("eth0", time.Now()); len(got) != 0 {
		t.Errorf("held after Stop: %v", got)
	}
}
