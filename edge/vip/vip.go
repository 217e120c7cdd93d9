// Package vip puts the addresses this host announces on the loopback
// interface, so the kernel delivers their traffic to HAProxy, and removes
// them when the lease goes. It only ever touches addresses it labelled
// itself ("lo:edged"), so an operator's own loopback addresses are safe,
// and it finds its own leftovers after a crash by that label.
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

// Label marks IPv4 addresses edged added (IPv6 has no labels; those are
// recognised by their /128 prefix on lo, which nothing else adds).
const Label = "lo:edged"

// Manager keeps lo's edged addresses equal to the wanted set.
type Manager struct {
	mu   sync.Mutex
	lo   netlink.Link
	have map[netip.Addr]bool
}

// New finds lo and the addresses a previous run left behind.
func New() (*Manager, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("find lo: %w", err)
	}
	m := &Manager{lo: lo, have: map[netip.Addr]bool{}}
	addrs, err := netlink.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list lo addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, _ := a.Mask.Size()
		if (ip.Is4() && a.Label == Label) || (ip.Is6() && ones == 128 && !ip.IsLoopback()) {
			m.have[ip] = true
		}
	}
	return m, nil
}

// Set makes lo hold exactly want (of edged's addresses).
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
		if err := netlink.AddrAdd(m.lo, addr(ip)); err != nil && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to lo: %w", ip, err))
			continue
		}
		m.have[ip] = true
	}
	for ip := range m.have {
		if wanted[ip] {
			continue
		}
		if err := netlink.AddrDel(m.lo, addr(ip)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
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
