package announce

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/lab"
)

// TestLabArpingOneOwner runs the announcer in the edge namespace with a real
// raw socket and checks that arping from the client gets its MAC.
func TestLabArpingOneOwner(t *testing.T) {
	l := lab.New(t, "edge1", "client")
	if out, err := l.Exec("edge1", "sh", "-c", "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_announce=2"); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	v := netip.MustParseAddr("10.77.0.200")
	a := NewAnnouncer()
	a.SetLeases([]Lease{{IP: v, Until: time.Now().Add(time.Minute)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-done })
	go func() { done <- l.Do("edge1", func() error { return a.Serve(ctx, "eth0") }) }()
	mac, _ := l.Exec("edge1", "cat", "/sys/class/net/eth0/address")
	out, err := l.Exec("client", "arping", "-c", "3", "-w", "5", "-I", "eth0", v.String())
	if err != nil {
		t.Fatalf("arping: %v: %s", err, out)
	}
	if !strings.Contains(strings.ToLower(out), strings.TrimSpace(mac)) {
		t.Errorf("arping output lacks owner MAC %s:\n%s", mac, out)
	}
	a.SetLeases(nil)
	if out, err := l.Exec("client", "arping", "-c", "2", "-w", "2", "-I", "eth0", v.String()); err == nil {
		t.Errorf("arping answered after the lease was withdrawn:\n%s", out)
	}
}
