// Package vip puts the addresses this host announces on the loopback
// interface, so the kernel delivers their traffic to HAProxy, and removes
// them when the lease goes. It only ever touches addresses it marked
// itself, so an operator's own loopback addresses (a router ID, an anycast
// /128) are safe, and it finds its own leftovers after a crash by that
// mark: every address it adds carries the address protocol Proto
// (IFA_PROTO, Linux 6.1 and later), and IPv4 ones also the label
// "lo:edged". The mark lives in the kernel, so it survives a crash of
// edged; an address without it is never removed, also when edged wants the
// same IP (it then uses the operator's address and leaves it in place).
package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Label marks IPv4 addresses edged added (`ip -4 address show label
// lo:edged`). IPv6 addresses have no labels; Proto marks both families.
const Label = "lo:edged"

// Proto is the address protocol (IFA_PROTO) of every address edged adds:
// 0xED, for edged, outside the kernel's own values (0-3: unspec, kernel_lo,
// kernel_ra, kernel_ll). iproute2 6.2 and later show it as `proto 237`. On
// a kernel older than 6.1 the mark is dropped silently: edged then still
// removes what it added while it runs, but leaves its IPv6 leftovers of a
// crash on lo rather than guess which /128 is whose.
const Proto = 0xED

// Manager keeps lo's edged addresses equal to the wanted set.
type Manager struct {
	mu   sync.Mutex
	lo   netlink.Link
	have map[netip.Addr]bool // marked addresses on lo: edged's own
}

// New finds lo and the marked addresses a previous run left behind (Set
// removes them unless they are wanted).
func New() (*Manager, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("find lo: %w", err)
	}
	m := &Manager{lo: lo, have: map[netip.Addr]bool{}}
	addrs, err := list(lo.Attrs().Index)
	if err != nil {
		return nil, fmt.Errorf("list lo addresses: %w", err)
	}
	for _, a := range addrs {
		if ours(a) {
			m.have[a.ip] = true
		}
	}
	return m, nil
}

// ours reports whether a carries edged's mark.
func ours(a loAddr) bool {
	host := (a.ip.Is4() && a.bits == 32) || (a.ip.Is6() && a.bits == 128)
	return host && (a.proto == Proto || (a.ip.Is4() && a.label == Label))
}

// Set makes lo hold exactly want of edged's addresses. An address in want
// that lo already holds without edged's mark is left as it is, and never
// removed later.
func (m *Manager) Set(want []netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted := make(map[netip.Addr]bool, len(want))
	var errs []error
	for _, ip := range want {
		ip = ip.Unmap()
		wanted[ip] = true
		if m.have[ip] {
			continue
		}
		if err := add(m.lo.Attrs().Index, ip); err != nil {
			if !errExists(err) {
				errs = append(errs, fmt.Errorf("add %s to lo: %w", ip, err))
			}
			continue // EEXIST: someone else's address; it serves as it is
		}
		m.have[ip] = true
	}
	for ip := range m.have {
		if wanted[ip] {
			continue
		}
		if err := del(m.lo, ip); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %s from lo: %w", ip, err))
			continue
		}
		delete(m.have, ip)
	}
	return errors.Join(errs...)
}

func addr(ip netip.Addr) *netlink.Addr {
	bits := 32
	label := Label
	if ip.Is6() {
		bits, label = 128, ""
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}, Label: label}
}
