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

// TestOnlyMarkedIPv6Addresses: IPv6 has no labels, so an operator's /128 on
// lo (a router ID, an anycast address) looks like a VIP by its prefix; only
// the kernel-side mark (IFA_PROTO) tells them apart, also after a crash.
func TestOnlyMarkedIPv6Addresses(t *testing.T) {
	inNewNetns(t, func() {
		lo, _ := netlink.LinkByName("lo")
		for _, s := range []string{"fd00:99::1/128", "fd00:99::2/128", "10.9.9.8/32"} {
			a, _ := netlink.ParseAddr(s)
			if err := netlink.AddrAdd(lo, a); err != nil {
				t.Fatal(err)
			}
		}
		// A crash leftover: added by a Manager that never got to remove it.
		crashed, err := New()
		if err != nil {
			t.Fatal(err)
		}
		leftover := netip.MustParseAddr("fd00:4::7")
		if err := crashed.Set([]netip.Addr{leftover}); err != nil {
			t.Fatal(err)
		}
		addrs, err := list(lo.Attrs().Index)
		if err != nil {
			t.Fatal(err)
		}
		marked := map[string]bool{}
		for _, a := range addrs {
			marked[a.ip.String()] = a.proto == Proto
		}
		if !marked["fd00:4::7"] || marked["fd00:99::1"] {
			t.Fatalf("kernel marks = %v, want fd00:4::7 marked and fd00:99::1 not", marked)
		}

		m, err := New()
		if err != nil {
			t.Fatal(err)
		}
		// fd00:99::2 is the operator's and also wanted: used, not taken over.
		vip6, shared := netip.MustParseAddr("fd00:4::1"), netip.MustParseAddr("fd00:99::2")
		if err := m.Set([]netip.Addr{vip6, shared, netip.MustParseAddr("10.9.9.8")}); err != nil {
			t.Fatal(err)
		}
		got := loAddrs(t)
		if strings.Contains(got, "fd00:4::7") || !strings.Contains(got, "fd00:4::1/128") {
			t.Errorf("after restart and Set lo = %s, want the leftover gone and the VIP added", got)
		}
		if err := m.Set(nil); err != nil {
			t.Fatal(err)
		}
		got = loAddrs(t)
		for _, want := range []string{"fd00:99::1/128", "fd00:99::2/128", "10.9.9.8/32"} {
			if !strings.Contains(got, want) {
				t.Errorf("the operator's %s was removed: %s", want, got)
			}
		}
		if strings.Contains(got, "fd00:4::1") {
			t.Errorf("edged's own address stayed after Set(nil): %s", got)
		}
	})
}
