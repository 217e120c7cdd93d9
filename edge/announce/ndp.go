package announce

import (
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
)

// allNodes is the destination of unsolicited advertisements (RFC 4861 7.2.6)
// and of answers to duplicate address detection probes.
var allNodes = netip.IPv6LinkLocalAllNodes()

// handleNDP decodes one ICMPv6 message from src, received with hop limit
// hop, and returns the Neighbor Advertisement to send and its destination,
// or nil and the reason it is not answered.
func (a *Responder) handleNDP(b []byte, src netip.Addr, hop int, now time.Time, ifc Iface) (*ndp.NeighborAdvertisement, netip.Addr, Reason) {
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, netip.Addr{}, ReasonNotRequest
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	// RFC 4861 7.1.1: a solicitation that crossed a router is not valid.
	if !ok || hop != ndp.HopLimit {
		return nil, netip.Addr{}, ReasonNotRequest
	}
	f := Frame{Request: true, Target: ns.TargetAddress, NDP: true, SenderHW: sourceLLA(ns.Options)}
	leases, stopped := a.snapshot()
	if stopped {
		return nil, netip.Addr{}, ReasonNotOwned
	}
	if ok, why := shouldAnswer(f, now, leases, ifc); !ok {
		return nil, netip.Addr{}, why
	}
	countRequest(ns.TargetAddress.String())
	// RFC 4861 7.2.4: a probe from the unspecified address (duplicate
	// address detection) is answered to all-nodes and not as solicited.
	dst, solicited := src.WithZone(""), true
	if dst.IsUnspecified() {
		dst, solicited = allNodes, false
	}
	return advertisement(ifc.HW, ns.TargetAddress, solicited), dst, ReasonAnswer
}

// advertisement builds a Neighbor Advertisement for ip from hw with the
// Override flag, so the receiver replaces a cached MAC at once.
func advertisement(hw net.HardwareAddr, ip netip.Addr, solicited bool) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: hw}},
	}
}

// sourceLLA returns the Source Link-Layer Address option, if any: it names
// the sender's MAC, which identifies this host's own frames.
func sourceLLA(opts []ndp.Option) net.HardwareAddr {
	for _, o := range opts {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Source {
			return l.Addr
		}
	}
	return nil
}
