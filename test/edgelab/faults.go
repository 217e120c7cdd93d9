package edgelab

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// SetLink sets h's eth0 up or down (netlink in h's namespace: no process
// start, so the fault lands within a millisecond).
func (l *Lab) SetLink(h *Host, up bool) error {
	link, err := h.nl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("%s eth0: %w", h.NS, err)
	}
	if up {
		err = h.nl.LinkSetUp(link)
	} else {
		err = h.nl.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("%s eth0 up=%t: %w", h.NS, up, err)
	}
	return nil
}

// Crash is the owner crash: SIGKILL edged, then eth0 down. It
// returns the instant the fault was complete.
func (l *Lab) Crash(e *Edge) (time.Time, error) {
	l.KillEdged(e)
	if err := l.SetLink(e.Host, false); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// Revive undoes Crash or a link-down: eth0 up and edged started again.
func (l *Lab) Revive(e *Edge) error {
	if err := l.SetLink(e.Host, true); err != nil {
		return err
	}
	if e.Running() {
		return nil
	}
	return l.StartEdged(e)
}

// blackholeMAC is a locally administered MAC no host has: frames sent to
// it are flooded by the bridge and dropped by every receiver, silently, as
// a real partition drops them (a blackhole route would fail the sender's
// sendmsg at once, which keepalived and raft would notice).
var blackholeMAC = net.HardwareAddr{0x02, 0xed, 0x1a, 0xb0, 0x00, 0x01}

// Partition cuts h off from the other edge hosts while its link to the
// client stays up: a permanent neighbour entry with blackholeMAC for every
// peer on h, and for h on every peer, so raft, lease renewals and unicast
// VRRP adverts vanish in both directions (no iptables/nft here).
func (l *Lab) Partition(h *Host) error {
	return l.partition(h, true)
}

// Heal removes the entries Partition added; ARP resolves the peers again.
func (l *Lab) Heal(h *Host) error {
	return l.partition(h, false)
}

func (l *Lab) partition(h *Host, cut bool) error {
	var errs []error
	for _, p := range l.Edges {
		if p.Host == h {
			continue
		}
		for _, pair := range [][2]*Host{{h, p.Host}, {p.Host, h}} {
			on, dst := pair[0], pair[1]
			link, err := on.nl.LinkByName("eth0")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4, IP: dst.Addr.AsSlice(),
				State: netlink.NUD_PERMANENT, HardwareAddr: blackholeMAC}
			if cut {
				err = on.nl.NeighSet(n)
			} else if err = on.nl.NeighDel(n); errors.Is(err, syscall.ENOENT) {
				err = nil
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: neighbour %s cut=%t: %w", on.NS, dst.Addr, cut, err))
			}
		}
	}
	return errors.Join(errs...)
}
