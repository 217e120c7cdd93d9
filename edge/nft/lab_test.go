package nft

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/goldentooth/edged/test/lab"
)

// labPrefix names this package's lab namespaces (see test/lab).
const labPrefix = "edl-nft"

// The lab: edge (the lease holder, a router) forwards vip:vipPort/udp to
// UDP echo servers on pod1 and pod2; client and outside route the VIP via
// edge. test/lab numbers hosts 10.77.0.1.. in order.
var (
	labVIP     = netip.MustParseAddr("10.77.100.1")
	labVIPPort = uint16(5353)
	echoPort   = uint16(7777)
	edgeAddr   = "10.77.0.1"
)

// answerWait bounds one request; a forwarded answer on this lab takes well
// under a millisecond, so a missing one is a refusal or a drop.
const answerWait = 300 * time.Millisecond

type nftLab struct {
	*lab.Lab
	table *Table
	pods  map[string]netip.AddrPort
}

// newNFTLab builds the lab, starts the echo pods and returns a started
// Table in edge's namespace; it skips when not root.
func newNFTLab(t *testing.T) *nftLab {
	t.Helper()
	l := &nftLab{Lab: lab.NewWithPrefix(t, labPrefix, "edge", "client", "pod1", "pod2", "outside"), pods: map[string]netip.AddrPort{}}
	// configs/99-edged.conf: forward, and no ICMP redirects (clients and
	// pods share a segment, and redirects would use up the per-host ICMP
	// rate limit that port unreachable answers need).
	mustExec(t, l.Lab, "edge", "sysctl", "-qw", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
	for _, h := range []string{"client", "outside"} {
		mustExec(t, l.Lab, h, "ip", "route", "add", labVIP.String()+"/32", "via", edgeAddr)
	}
	for _, h := range []string{"pod1", "pod2"} {
		l.pods[h] = netip.AddrPortFrom(netip.MustParseAddr(l.Addr[h]), echoPort)
		startEcho(t, l.Lab, h, l.pods[h])
	}
	ns, err := netns.GetFromName(l.Hosts["edge"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	l.table = OpenAt(ns)
	if err := l.table.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = l.table.Close() })
	t.Cleanup(func() {
		if t.Failed() { // the rules as the kernel holds them, when nft is installed
			out, _ := l.Exec("edge", "nft", "list", "ruleset")
			icmp, _ := l.Exec("edge", "nstat", "-az", "IcmpOut*")
			t.Logf("edge ruleset:\n%s\nICMP counters:\n%s", out, icmp)
		}
	})
	return l
}

func mustExec(t *testing.T, l *lab.Lab, host string, args ...string) {
	t.Helper()
	if out, err := l.Exec(host, args...); err != nil {
		t.Fatalf("%s: %v: %v: %s", host, args, err, out)
	}
}

// startEcho serves UDP on addr in host: every datagram is answered with
// "host:" and the datagram.
func startEcho(t *testing.T, l *lab.Lab, host string, addr netip.AddrPort) {
	t.Helper()
	var c *net.UDPConn
	if err := l.Do(host, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatalf("echo on %s: %v", host, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(append([]byte(host+":"), buf[:n]...), from)
		}
	}()
}

// flow is one client socket: one 5-tuple, so one conntrack entry.
type udpFlow struct{ c *net.UDPConn }

func (l *nftLab) dial(t *testing.T, host string) udpFlow {
	t.Helper()
	var c *net.UDPConn
	if err := l.Do(host, func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(labVIP, labVIPPort)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return udpFlow{c}
}

// ask sends msg and returns which pod answered ("" and the error when
// none did).
func (f udpFlow) ask(msg string) (string, error) {
	if _, err := f.c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = f.c.SetReadDeadline(time.Now().Add(answerWait))
	buf := make([]byte, 1500)
	n, err := f.c.Read(buf)
	if err != nil {
		return "", err
	}
	pod, echoed, _ := strings.Cut(string(buf[:n]), ":")
	if echoed != msg {
		return "", errors.New("wrong echo " + string(buf[:n]))
	}
	return pod, nil
}

func (f udpFlow) mustAsk(t *testing.T, msg string) string {
	t.Helper()
	pod, err := f.ask(msg)
	if err != nil {
		t.Fatalf("ask %q through %v: %v", msg, netip.AddrPortFrom(labVIP, labVIPPort), err)
	}
	return pod
}

func (l *nftLab) apply(t *testing.T, fs ...Forward) {
	t.Helper()
	if err := l.table.Apply(fs); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (l *nftLab) forward(eps []string, draining ...string) Forward {
	f := Forward{VIP: labVIP, Proto: UDP, Port: labVIPPort, Owner: "lab/echo"}
	for _, p := range eps {
		f.Endpoints = append(f.Endpoints, l.pods[p])
	}
	for _, p := range draining {
		f.Draining = append(f.Draining, l.pods[p])
	}
	return f
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLabForwarding drives a real Table in a lab namespace: a client is
// answered through the VIP by an echo pod; an established flow keeps its
// endpoint while new flows use the new set; an endpoint that leaves takes
// its flows' conntrack entries with it; no endpoint answers port
// unreachable; source ranges admit a client inside and drop one outside;
// and without the lease (nothing applied) nothing is forwarded.
func TestLabForwarding(t *testing.T) {
	l := newNFTLab(t)

	// One endpoint.
	l.apply(t, l.forward([]string{"pod1"}))
	c1 := l.dial(t, "client")
	if got := c1.mustAsk(t, "hello"); got != "pod1" {
		t.Fatalf("answered by %q, want pod1", got)
	}

	// More endpoints: c1's flow stays on pod1, new flows spread over both.
	l.apply(t, l.forward([]string{"pod1", "pod2"}))
	seen := map[string]int{}
	for i := range 30 {
		if got := c1.mustAsk(t, "again"); got != "pod1" {
			t.Fatalf("established flow moved to %q after %d requests", got, i)
		}
		seen[l.dial(t, "client").mustAsk(t, "new")]++
	}
	if seen["pod1"] == 0 || seen["pod2"] == 0 {
		t.Fatalf("30 new flows over two endpoints went %v", seen)
	}

	// pod1 terminating but serving: its flow is kept, new flows go to pod2.
	l.apply(t, l.forward([]string{"pod2"}, "pod1"))
	if got := c1.mustAsk(t, "draining"); got != "pod1" {
		t.Fatalf("flow on a draining endpoint moved to %q", got)
	}
	for range 10 {
		if got := l.dial(t, "client").mustAsk(t, "new"); got != "pod2" {
			t.Fatalf("new flow went to draining %q", got)
		}
	}

	// pod1 gone: its flow's conntrack entry is deleted, the next packet
	// is balanced afresh.
	l.apply(t, l.forward([]string{"pod2"}))
	if got := c1.mustAsk(t, "moved"); got != "pod2" {
		t.Fatalf("flow of a removed endpoint answered by %q, want pod2", got)
	}

	// No endpoint: port unreachable, not silence.
	l.apply(t, l.forward(nil))
	if _, err := l.dial(t, "client").ask("nobody"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("no endpoints: got %v, want connection refused (ICMP port unreachable)", err)
	}

	// Source ranges: client (10.77.0.2) inside, outside (10.77.0.5) not.
	f := l.forward([]string{"pod1"})
	f.Restricted, f.Sources = true, []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32"), netip.MustParsePrefix("192.0.2.0/24")}
	l.apply(t, f)
	if got := l.dial(t, "client").mustAsk(t, "inside"); got != "pod1" {
		t.Fatalf("inside client answered by %q", got)
	}
	if got, err := l.dial(t, "outside").ask("outside"); !isTimeout(err) {
		t.Fatalf("outside client: answer %q, err %v; want a silent drop", got, err)
	}
	// A range change applies to established flows too.
	out := l.dial(t, "outside")
	f.Sources = append(f.Sources, netip.MustParsePrefix("10.77.0.4/30"))
	l.apply(t, f)
	if got := out.mustAsk(t, "admitted"); got != "pod1" {
		t.Fatalf("outside client after its range was added: %q", got)
	}
	f.Sources = f.Sources[:2]
	l.apply(t, f)
	if got, err := out.ask("refused again"); !isTimeout(err) {
		t.Fatalf("established flow after its range was removed: answer %q, err %v; want a drop", got, err)
	}

	// Lease gone: the part applies nothing for the VIP; established flows
	// stop too (their conntrack entries go with the Forward).
	established := l.dial(t, "client")
	established.mustAsk(t, "before")
	l.apply(t)
	for _, c := range []udpFlow{established, l.dial(t, "client")} {
		if got, err := c.ask("after"); err == nil {
			t.Fatalf("answered by %q without the lease", got)
		}
	}
	if tables := l.edgedTables(t); len(tables) != 0 {
		t.Fatalf("nothing forwarded, yet tables %v exist", tables)
	}
}

// TestLabStartClose: Start removes a previous run's tables and Close
// removes the tables it made.
func TestLabStartClose(t *testing.T) {
	l := newNFTLab(t)
	l.apply(t, l.forward([]string{"pod1"}), Forward{VIP: netip.MustParseAddr("fd00:77::100"), Proto: UDP, Port: 53,
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("[fd00:77::3]:53")}})
	if got := l.edgedTables(t); len(got) != 2 {
		t.Fatalf("tables %v, want ip and ip6 edged", got)
	}
	// A new Table in the same namespace (a restarted edged) starts clean.
	again := OpenAt(l.table.ns)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	if got := l.edgedTables(t); len(got) != 0 {
		t.Fatalf("after Start: tables %v", got)
	}
	l.apply(t, l.forward([]string{"pod1"}))
	if err := l.table.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.edgedTables(t); len(got) != 0 {
		t.Fatalf("after Close: tables %v", got)
	}
}

// edgedTables lists edged's tables in the edge namespace.
func (l *nftLab) edgedTables(t *testing.T) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(l.table.ns)))
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range all {
		if tb.Name == TableName {
			out = append(out, map[nftables.TableFamily]string{nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6"}[tb.Family]+" "+tb.Name)
		}
	}
	return out
}
