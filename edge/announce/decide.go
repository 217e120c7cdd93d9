package announce

import (
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Lease is a permission from the raft group to announce IP until Until.
type Lease struct {
	// IP is the announced LoadBalancer IP.
	IP netip.Addr
	// Until is the instant after which the IP must no longer be answered.
	Until time.Time
	// Interfaces are the only interfaces IP is announced on (its pool's
	// L2 advertisements); empty means every interface the Responder serves.
	Interfaces []string
}

// held is one lease as the decision sees it.
type held struct {
	until time.Time
	// shared, when set, holds the lease end instead of until: one end
	// for every IP of a grant, which Renew replaces atomically.
	shared *atomic.Pointer[time.Time]
	ifaces []string
}

// end is the instant the lease ends.
func (h held) end() time.Time {
	if h.shared != nil {
		return *h.shared.Load()
	}
	return h.until
}

// Reason says why a frame is or is not answered.
type Reason int

// Reasons returned by shouldAnswer, in the order they are checked.
const (
	ReasonAnswer Reason = iota
	ReasonNotRequest
	ReasonOwnFrame
	ReasonIfaceDown
	ReasonIfaceNoARP
	ReasonBondMember
	ReasonNotOwned
	ReasonLeaseExpired
	ReasonNotAdvertised
	ReasonWrongFamily
)

var reasonNames = map[Reason]string{
	ReasonAnswer:        "answer",
	ReasonNotRequest:    "not a request",
	ReasonOwnFrame:      "own frame",
	ReasonIfaceDown:     "interface down",
	ReasonIfaceNoARP:    "interface NOARP",
	ReasonBondMember:    "bond member",
	ReasonNotOwned:      "no lease for target",
	ReasonLeaseExpired:  "lease expired",
	ReasonNotAdvertised: "interface not in the advertisement",
	ReasonWrongFamily:   "target of the other address family",
}

// String returns a short human name for the reason.
func (r Reason) String() string { return reasonNames[r] }

// Frame is the decoded part of an ARP packet or NDP solicitation that the
// decision needs.
type Frame struct {
	// Request is true for an ARP request or a Neighbor Solicitation.
	Request bool
	// SenderHW is the hardware address the frame came from.
	SenderHW net.HardwareAddr
	// Target is the IP being asked for.
	Target netip.Addr
	// NDP is true for a Neighbor Solicitation (IPv6), false for ARP (IPv4).
	NDP bool
}

// Iface is the state of the interface a frame arrived on.
type Iface struct {
	// Name is the interface name, matched against Lease.Interfaces.
	Name string
	// HW is the interface MAC address.
	HW net.HardwareAddr
	// Up is true when the link is administratively and operationally up.
	Up bool
	// NoARP is true when the link has the NOARP flag.
	NoARP bool
	// BondMember is true when the link is enslaved to a bond.
	BondMember bool
}

// shouldAnswer decides whether frame, arriving at now on iface, is answered
// under leases. The lease expiry is checked per frame, so an answer never
// goes out after Until even if no timer fired.
func shouldAnswer(f Frame, now time.Time, leases map[netip.Addr]held, ifc Iface) (bool, Reason) {
	switch {
	case !f.Request:
		return false, ReasonNotRequest
	case f.NDP != (f.Target.Is6() && !f.Target.Is4In6()):
		// An IPv4-mapped NDP target would otherwise match an IPv4 lease.
		return false, ReasonWrongFamily
	case len(ifc.HW) > 0 && f.SenderHW.String() == ifc.HW.String():
		return false, ReasonOwnFrame
	case !ifc.Up:
		return false, ReasonIfaceDown
	case ifc.NoARP:
		return false, ReasonIfaceNoARP
	case ifc.BondMember:
		return false, ReasonBondMember
	}
	h, ok := leases[f.Target.Unmap()]
	if !ok {
		return false, ReasonNotOwned
	}
	if !now.Before(h.end()) {
		return false, ReasonLeaseExpired
	}
	if !h.advertisedOn(ifc.Name) {
		return false, ReasonNotAdvertised
	}
	return true, ReasonAnswer
}

// advertisedOn reports whether the lease may be announced on interface name.
func (h held) advertisedOn(name string) bool {
	return len(h.ifaces) == 0 || slices.Contains(h.ifaces, name)
}
