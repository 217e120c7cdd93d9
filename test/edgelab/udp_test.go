package edgelab

import (
	"context"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// udpRecover bounds a UDP takeover after an owner crash: the lease must
// expire first (goal: the same as TCP's, moveTimeout's budget).
const udpRecover = 10 * time.Second

// TestUDPFailover: a Service with a TCP port (HAProxy) and a UDP port
// (nftables) on one VIP answers both through the VIP; after a kill -9 of
// the owner's edged (and its link down) both recover on the new owner,
// and the client's gaps are logged side by side. Then source ranges: the
// client is refused while outside them and answered once inside (UDP).
func TestUDPFailover(t *testing.T) {
	l := New(t, Options{HAProxy: true})
	if err := l.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod, err := l.StartPod("echo-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ServeUDPPod(pod); err != nil {
		t.Fatal(err)
	}
	vip, err := l.CreateMixedService(ctx, "dns")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetMixedEndpoints(ctx, "dns", pod); err != nil {
		t.Fatal(err)
	}
	udp := l.StartUDPProbe(vip, UDPPort, ProbeInterval)
	tcp := l.StartProbe(vip, ProbeInterval)
	for _, err := range []error{udp.WaitOK(20, readyTimeout), tcp.WaitOK(20, readyTimeout)} {
		if err != nil {
			t.Fatalf("before the fault: %v\n%s", err, l.LogTails(3000))
		}
	}
	owner, err := l.Owner(vip)
	if err != nil {
		t.Fatal(err)
	}
	fault, err := l.Crash(owner)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{udp.WaitRecovered(fault, udpRecover), tcp.WaitRecovered(fault, udpRecover)} {
		if err != nil {
			t.Fatalf("%s crashed: %v\n%s", owner.ID, err, l.LogTails(3000))
		}
	}
	// Count the requests in flight now too: each ends within probeTimeout
	// of its start, so once one started probeTimeout after now has ended,
	// they all have.
	now := time.Now()
	settled := func(rs []Result) (bool, string) {
		for _, r := range rs {
			if r.Start.After(now.Add(probeTimeout)) {
				return true, ""
			}
		}
		return false, ""
	}
	wait.For(t, 3*probeTimeout, "UDP requests in flight at recovery ended", func() (bool, string) { return settled(udp.Results()) })
	wait.For(t, 3*probeTimeout, "TCP requests in flight at recovery ended", func() (bool, string) { return settled(tcp.Results()) })
	ug, uok := GapAfter(udp.Results(), fault, now)
	tg, tok := GapAfter(tcp.Results(), fault, now)
	if !uok || !tok {
		t.Fatalf("no answer after the fault: udp %v, tcp %v", uok, tok)
	}
	t.Logf("owner %s crashed (kill -9, link down): UDP gap %v (%d datagrams lost, answered by %s via the new owner), TCP gap %v (%d requests failed)",
		owner.ID, ug.First.Round(time.Millisecond), ug.Failed, ug.Host, tg.First.Round(time.Millisecond), tg.Failed)

	// Source ranges (UDP): the client (10.77.0.4 with three edge hosts)
	// outside them gets no answer; inside, it does.
	if err := l.SetSourceRanges(ctx, "dns", "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := udp.WaitFailing(20, readyTimeout); err != nil {
		t.Fatalf("client outside loadBalancerSourceRanges: %v\n%s", err, l.LogTails(3000))
	}
	if err := l.SetSourceRanges(ctx, "dns", "192.0.2.0/24", l.Client.Addr.String()+"/32"); err != nil {
		t.Fatal(err)
	}
	if err := udp.WaitOK(20, readyTimeout); err != nil {
		t.Fatalf("client inside loadBalancerSourceRanges: %v\n%s", err, l.LogTails(3000))
	}
}
