package vip

import (
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNewNetns runs the test body on a locked thread inside a fresh network
// namespace, so nothing touches the host's lo.
func inNewNetns(t *testing.T, body func()) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); ns.Close() }()
	lo, _ := netlink.LinkByName("lo")
	netlink.LinkSetUp(lo)
	body()
}

func loAddrs(t *testing.T) string {
	lo, _ := netlink.LinkByName("lo")
	addrs, err := netlink.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.IPNet.String())
	}
	return strings.Join(out, " ")
}

func TestSetAddsAndRemovesOnlyItsOwn(t *testing.T) {
	inNewNetns(t, func() {
		lo, _ := netlink.LinkByName("lo")
		operator, _ := netlink.ParseAddr("10.9.9.9/32")
		if err := netlink.AddrAdd(lo, operator); err != nil {
			t.Fatal(err)
		}
		m, err := New()
		if err != nil {
			t.Fatal(err)
		}
		a, b, c := netip.MustParseAddr("10.4.11.1"), netip.MustParseAddr("10.4.11.2"), netip.MustParseAddr("fd00:4::1")
		if err := m.Set([]netip.Addr{a, b, c}); err != nil {
			t.Fatal(err)
		}
		got := loAddrs(t)
		for _, want := range []string{"10.4.11.1/32", "10.4.11.2/32", "fd00:4::1/128", "10.9.9.9/32"} {
			if !strings.Contains(got, want) {
				t.Errorf("lo lacks %s: %s", want, got)
			}
		}
		if err := m.Set([]netip.Addr{b}); err != nil {
			t.Fatal(err)
		}
		got = loAddrs(t)
		if strings.Contains(got, "10.4.11.1/32") || strings.Contains(got, "fd00:4::1") || !strings.Contains(got, "10.4.11.2/32") {
			t.Errorf("after Set([b]) lo = %s", got)
		}
		if !strings.Contains(got, "10.9.9.9/32") {
			t.Errorf("the operator's own address was removed: %s", got)
		}
		// A restarted edged finds its leftovers by label and clears them.
		m2, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Set(nil); err != nil {
			t.Fatal(err)
		}
		if got := loAddrs(t); strings.Contains(got, "10.4.11.2") || !strings.Contains(got, "10.9.9.9/32") {
			t.Errorf("after restart and Set(nil) lo = %s", got)
		}
	})
}
