package announce

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goldentooth/edged/test/wait"
)

// Lab timings: short so the tests stay fast, and distinct so a frame can be
// told apart as burst or refresh.
const (
	labCount    = 3
	labInterval = 20 * time.Millisecond
	// longBurst, 10 ms apart, tells a burst from refreshes even when the
	// sniffer reads frames late on a loaded machine: in a window of two
	// refresh intervals the refresh alone sends at most three frames.
	longBurst = 5
)

var (
	labVIP  = netip.MustParseAddr("10.77.0.200")
	labVIP6 = netip.MustParseAddr("fd00:77::200")
)

func leaseFor(ip netip.Addr, d time.Duration) []Lease {
	return []Lease{{IP: ip, Until: time.Now().Add(d)}}
}

// arpingMACs returns the MACs that answered arping from host for ip.
func (e *labEnv) arpingMACs(host string, ip netip.Addr, count int) []string {
	// Habets' arping: "42 bytes from MAC (IP): index=0 time=...".
	out, _ := e.Exec(host, "arping", "-c", itoa(count), "-W", "0.2", "-w", "2", "-i", "eth0", ip.String())
	var macs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == "bytes" && f[2] == "from" {
			if m := strings.ToLower(f[3]); !contains(macs, m) {
				macs = append(macs, m)
			}
		}
	}
	return macs
}

// TestLabArpingOneOwner: arping from the client gets exactly the lease
// holder's MAC, and nothing once the lease is withdrawn.
func TestLabArpingOneOwner(t *testing.T) {
	e := newLab(t, "edge1", "edge2", "client")
	a1, a2 := NewResponder(), NewResponder()
	e.serve(t, "edge1", a1)
	e.serve(t, "edge2", a2)
	a1.SetLeases(leaseFor(labVIP, time.Minute))
	if got, want := e.arpingMACs("client", labVIP, 3), []string{e.mac["edge1"].String()}; !equal(got, want) {
		t.Fatalf("arping answered by %v, want exactly %v", got, want)
	}
	a1.SetLeases(nil)
	if got := e.arpingMACs("client", labVIP, 2); len(got) != 0 {
		t.Errorf("arping answered by %v after the lease was withdrawn", got)
	}
}

// TestLabGARPTakeover: when the lease moves, the new owner's gratuitous
// burst moves the client's existing neighbour entry, the burst has the
// configured length, and the old owner sends nothing more.
func TestLabGARPTakeover(t *testing.T) {
	e := newLab(t, "edge1", "edge2", "client")
	// edge1 refreshes often, so its silence after the handover means something;
	// edge2 does not refresh within the test, so its burst can be counted.
	a1 := NewResponder(WithGratuitous(labCount, labInterval), WithRefresh(50*time.Millisecond))
	a2 := NewResponder(WithGratuitous(labCount, labInterval), WithRefresh(time.Hour))
	e.serve(t, "edge1", a1)
	e.serve(t, "edge2", a2)
	sn := e.sniff(t, "client")

	a1.SetLeases(leaseFor(labVIP, time.Minute))
	_, _ = e.Exec("client", "ping", "-c", "1", "-W", "1", labVIP.String()) // resolves the VIP; no echo needed
	wait.ForBool(t, 3*time.Second, "client neighbour entry on edge1", func() bool { return e.neigh("client", labVIP) == e.mac["edge1"].String() })

	a1.SetLeases(nil)
	// After SetLeases returns edge1 sends nothing more (so counts nothing).
	before := testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP.String()))
	handover := time.Now()
	a2.SetLeases(leaseFor(labVIP, time.Minute))
	start := time.Now()
	if err := wait.UntilEvery(2*time.Second, measurePoll, "client neighbour entry on edge2", func() (bool, string) {
		got := e.neigh("client", labVIP)
		return got == e.mac["edge2"].String(), "neighbour entry " + got
	}); err != nil {
		t.Fatal(err)
	}
	moved := time.Since(start)
	first := sn.first(e.mac["edge2"], labVIP, handover).Sub(handover)
	t.Logf("first gratuitous ARP at the client %v after the lease moved; neighbour entry seen moved after %v (ip neigh polling)", first, moved)

	burst := func() int {
		return sn.count(arp.OperationRequest, e.mac["edge2"], labVIP, handover, time.Now().Add(time.Hour))
	}
	wait.ForBool(t, 2*time.Second, "burst received", func() bool { return burst() >= labCount })
	settle := time.Now().Add(3 * labInterval)
	wait.ForBool(t, time.Second, "three intervals past the burst", func() bool { return time.Now().After(settle) })
	if got := burst(); got != labCount {
		t.Errorf("edge2 sent %d gratuitous ARPs on takeover, want %d", got, labCount)
	}
	if got := testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP.String())) - before; got != labCount {
		t.Errorf("metallb_layer2_gratuitous_sent grew by %v, want %d", got, labCount)
	}
	// edge1 was refreshing every 50 ms; after the handover it must be silent.
	// A frame it wrote just before can reach the sniffer's goroutine late on
	// a loaded machine, so the window opens half a refresh after the handover.
	if got := sn.count(arp.OperationRequest, e.mac["edge1"], labVIP, handover.Add(25*time.Millisecond), time.Now()); got != 0 {
		t.Errorf("edge1 sent %d gratuitous ARPs after its lease was withdrawn", got)
	}
}

// TestLabLapseAndHeal: a lease that runs out (no SetLeases call) stops
// answers and refreshes at its end; regaining it sends a fresh burst.
func TestLabLapseAndHeal(t *testing.T) {
	e := newLab(t, "edge1", "client")
	const refresh = 100 * time.Millisecond
	a := NewResponder(WithGratuitous(longBurst, 10*time.Millisecond), WithRefresh(refresh))
	e.serve(t, "edge1", a)
	sn := e.sniff(t, "client")
	hw := e.mac["edge1"]

	start := time.Now()
	ls := leaseFor(labVIP, 600*time.Millisecond)
	a.SetLeases(ls)
	until := ls[0].Until
	if got := e.arpingMACs("client", labVIP, 1); !equal(got, []string{hw.String()}) {
		t.Fatalf("arping before the lapse answered by %v, want %s", got, hw)
	}
	// Watch for three refresh intervals past the lease end.
	wait.ForBool(t, 2*time.Second, "lapse observed", func() bool { return time.Now().After(until.Add(3 * refresh)) })
	if got := sn.count(arp.OperationRequest, hw, labVIP, start, until); got <= longBurst {
		t.Errorf("saw %d gratuitous ARPs while the lease held, want the burst (%d) plus refreshes", got, longBurst)
	}
	// A frame written just before Until can reach the sniffer's goroutine
	// late on a loaded machine; half a refresh is ample for that, and the
	// three refreshes due after it would all show.
	if last := sn.last(hw, labVIP); last.After(until.Add(refresh / 2)) {
		t.Errorf("edge1 sent a frame for %s %v after its lease ended", labVIP, last.Sub(until))
	}
	if got := e.arpingMACs("client", labVIP, 2); len(got) != 0 {
		t.Errorf("arping answered by %v after the lease lapsed", got)
	}

	heal := time.Now()
	a.SetLeases(leaseFor(labVIP, time.Minute))
	wait.ForBool(t, 2*time.Second, "burst after heal", func() bool {
		return sn.count(arp.OperationRequest, hw, labVIP, heal, heal.Add(2*refresh)) >= longBurst
	})
	t.Logf("first gratuitous ARP at the client %v after the lease was regained", sn.first(hw, labVIP, heal).Sub(heal))
}

// TestLabLinkState: a NOARP interface neither answers nor announces, a
// down link carries nothing, and a link that comes back up gets a burst.
func TestLabLinkState(t *testing.T) {
	e := newLab(t, "edge1", "client")
	const refresh = 150 * time.Millisecond
	a := NewResponder(WithGratuitous(longBurst, 10*time.Millisecond), WithRefresh(refresh))
	e.serve(t, "edge1", a)
	sn := e.sniff(t, "client")
	hw := e.mac["edge1"]
	a.SetLeases(leaseFor(labVIP, time.Minute))
	if got := e.arpingMACs("client", labVIP, 1); !equal(got, []string{hw.String()}) {
		t.Fatalf("arping answered by %v, want %s", got, hw)
	}

	e.mustExec(t, "edge1", "ip", "link", "set", "eth0", "arp", "off")
	off := time.Now()
	if got := e.arpingMACs("client", labVIP, 2); len(got) != 0 {
		t.Errorf("arping answered by %v on a NOARP link", got)
	}
	if got := sn.count(arp.OperationRequest, hw, labVIP, off.Add(refresh/2), time.Now()); got != 0 {
		t.Errorf("%d gratuitous ARPs on a NOARP link", got)
	}
	e.mustExec(t, "edge1", "ip", "link", "set", "eth0", "arp", "on")
	if got := e.arpingMACs("client", labVIP, 1); !equal(got, []string{hw.String()}) {
		t.Fatalf("arping after arp on answered by %v, want %s", got, hw)
	}

	e.mustExec(t, "edge1", "ip", "link", "set", "eth0", "down")
	down := time.Now()
	wait.ForBool(t, time.Second, "link down for 3 refreshes", func() bool { return time.Now().After(down.Add(3 * refresh)) })
	up := time.Now() // before the command: frames may follow within it
	e.mustExec(t, "edge1", "ip", "link", "set", "eth0", "up")
	if got := sn.count(arp.OperationRequest, hw, labVIP, down.Add(refresh/2), up); got != 0 {
		t.Errorf("%d gratuitous ARPs while the link was down", got)
	}
	// The kernel reports the carrier (IFF_RUNNING) a little after the link
	// is set up (linkwatch batches it, up to a second); nothing goes out
	// before. From then on, within two refresh intervals the refresh alone
	// sends at most three frames, so longBurst mean the burst.
	wait.ForBool(t, 3*time.Second, "carrier back", func() bool {
		out, err := e.Exec("edge1", "ip", "link", "show", "eth0")
		return err == nil && strings.Contains(out, "LOWER_UP") && strings.Contains(out, ",UP")
	})
	running := time.Now()
	wait.ForBool(t, time.Second, "burst after link up", func() bool {
		return sn.count(arp.OperationRequest, hw, labVIP, up, running.Add(2*refresh)) >= longBurst
	})
	t.Logf("carrier back %v after link up; first gratuitous ARP at the client %v after link up", running.Sub(up), sn.first(hw, labVIP, up).Sub(up))
}
