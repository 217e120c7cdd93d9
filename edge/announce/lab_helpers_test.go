package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/goldentooth/edged/test/lab"
	"github.com/goldentooth/edged/test/wait"
)

// labPrefix names this package's lab namespaces (see test/lab).
const labPrefix = "edl-an"

// labEnv is a lab whose edge hosts are set up like real edge hosts: the
// kernel never answers ARP for addresses on lo, and every host has an IPv6
// address on fd00:77::/64 (no DAD, so it is usable at once).
type labEnv struct {
	*lab.Lab
	mac map[string]net.HardwareAddr
}

func newLab(t *testing.T, hosts ...string) *labEnv {
	t.Helper()
	e := &labEnv{Lab: lab.NewWithPrefix(t, labPrefix, hosts...), mac: map[string]net.HardwareAddr{}}
	for i, h := range hosts {
		cmds := [][]string{
			{"sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.eth0.arp_ignore=1",
				"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.eth0.arp_announce=2",
				"net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.eth0.disable_ipv6=0"},
			{"ip", "-6", "addr", "add", fmt.Sprintf("fd00:77::%d/64", i+1), "dev", "eth0", "nodad"},
		}
		for _, c := range cmds {
			if out, err := e.Exec(h, c...); err != nil {
				t.Fatalf("%s: %v: %v: %s", h, c, err, out)
			}
		}
		out, err := e.Exec(h, "cat", "/sys/class/net/eth0/address")
		if err != nil {
			t.Fatalf("%s MAC: %v: %s", h, err, out)
		}
		if e.mac[h], err = net.ParseMAC(strings.TrimSpace(out)); err != nil {
			t.Fatalf("%s MAC %q: %v", h, out, err)
		}
	}
	// Link-local addresses finish duplicate address detection (about 1 s,
	// in parallel); until then the kernel cannot send from them.
	for _, h := range hosts {
		wait.ForBool(t, 10*time.Second, h+" link-local address usable", func() bool {
			out, err := e.Exec(h, "ip", "-6", "addr", "show", "dev", "eth0", "tentative")
			return err == nil && strings.TrimSpace(out) == ""
		})
	}
	return e
}

// mustExec runs a command in host and fails the test on error.
func (e *labEnv) mustExec(t *testing.T, host string, args ...string) string {
	t.Helper()
	out, err := e.Exec(host, args...)
	if err != nil {
		t.Fatalf("%s: %v: %v: %s", host, args, err, out)
	}
	return out
}

// serve runs a.Serve on host's eth0 until the test ends; the test fails if
// Serve returns an error before that.
func (e *labEnv) serve(t *testing.T, host string, a *Responder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Do(host, func() error { return a.Serve(ctx, "eth0") }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve on %s: %v", host, err)
		}
	})
	// Serve is up once it is registered (it registers after its sockets are open).
	wait.ForBool(t, 5*time.Second, "Serve on "+host+" registered", func() bool {
		a.mu.RLock()
		defer a.mu.RUnlock()
		return len(a.ports) > 0
	})
}

// neigh returns host's neighbour-table MAC for ip on eth0, or "" if none.
func (e *labEnv) neigh(host string, ip netip.Addr) string {
	out, _ := e.Exec(host, "ip", "neigh", "show", ip.String(), "dev", "eth0")
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

// measurePoll is how often a wait that is also a measurement looks: the
// 5 ms the latencies these labs log were measured with (wait.Interval's
// 20 ms would add up to 15 ms to each).
const measurePoll = 5 * time.Millisecond

// arpFrame is one ARP packet a sniffer saw.
type arpFrame struct {
	at     time.Time
	op     arp.Operation
	sender string
	ip     netip.Addr // sender IP
}

// sniffer records every ARP packet on host's eth0 through a raw socket.
type sniffer struct {
	mu     sync.Mutex
	frames []arpFrame
}

func (e *labEnv) sniff(t *testing.T, host string) *sniffer {
	t.Helper()
	var c *arp.Client
	if err := e.Do(host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		t.Fatalf("sniffer on %s: %v", host, err)
	}
	s := &sniffer{}
	done := make(chan struct{})
	var closed atomic.Bool
	go func() {
		defer close(done)
		for {
			p, _, err := c.Read()
			if errors.Is(err, net.ErrClosed) || closed.Load() {
				return
			}
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.frames = append(s.frames, arpFrame{at: time.Now(), op: p.Operation, sender: p.SenderHardwareAddr.String(), ip: p.SenderIP})
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { closed.Store(true); c.Close(); <-done })
	return s
}

// count returns how many frames from MAC hw for ip with operation op arrived
// in [from, to).
func (s *sniffer) count(op arp.Operation, hw net.HardwareAddr, ip netip.Addr, from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.frames {
		if f.op == op && f.sender == hw.String() && f.ip == ip && !f.at.Before(from) && f.at.Before(to) {
			n++
		}
	}
	return n
}

// first returns the arrival time of the first frame from hw for ip at or
// after from (zero if none).
func (s *sniffer) first(hw net.HardwareAddr, ip netip.Addr, from time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.frames {
		if f.sender == hw.String() && f.ip == ip && !f.at.Before(from) {
			return f.at
		}
	}
	return time.Time{}
}

// last returns the arrival time of the last frame from hw for ip.
func (s *sniffer) last(hw net.HardwareAddr, ip netip.Addr) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, f := range s.frames {
		if f.sender == hw.String() && f.ip == ip {
			t = f.at
		}
	}
	return t
}

func itoa(n int) string { return fmt.Sprint(n) }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
