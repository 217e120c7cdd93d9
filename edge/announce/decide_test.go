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
	leases := map[netip.Addr]time.Time{vip: t0.Add(time.Second)}
	req := Frame{Request: true, SenderHW: peerHW, Target: vip}
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
	a := NewAnnouncer()
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
	a := NewAnnouncer()
	a.SetLeases([]Lease{{IP: vip, Until: t0.Add(time.Second)}})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _ := a.handleARP(b, t0, upIface)
		if r != nil && r.SenderIP != vip {
			t.Fatalf("answered for unowned %s", r.SenderIP)
		}
	})
}
