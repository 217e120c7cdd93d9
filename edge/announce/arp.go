package announce

import (
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// handleARP decodes one Ethernet frame and returns the ARP reply to send,
// or nil and the reason it is not answered.
func (a *Responder) handleARP(b []byte, now time.Time, ifc Iface) (*arp.Packet, Reason) {
	var ef ethernet.Frame
	if err := ef.UnmarshalBinary(b); err != nil || ef.EtherType != ethernet.EtherTypeARP {
		return nil, ReasonNotRequest
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(ef.Payload); err != nil {
		return nil, ReasonNotRequest
	}
	target, ok := netip.AddrFromSlice(p.TargetIP.AsSlice())
	if !ok {
		return nil, ReasonNotRequest
	}
	f := Frame{Request: p.Operation == arp.OperationRequest, SenderHW: p.SenderHardwareAddr, Target: target}
	leases, stopped := a.snapshot()
	if stopped {
		return nil, ReasonNotOwned
	}
	ok, why := shouldAnswer(f, now, leases, ifc)
	if !ok {
		return nil, why
	}
	countRequest(target.String())
	reply, err := arp.NewPacket(arp.OperationReply, ifc.HW, p.TargetIP, p.SenderHardwareAddr, p.SenderIP)
	if err != nil {
		return nil, ReasonNotRequest
	}
	return reply, ReasonAnswer
}

// gratuitous builds a gratuitous ARP request for ip from hw: Linux accepts a
// request form into an existing neighbour entry at once (issue 5, measured).
func gratuitous(hw net.HardwareAddr, ip netip.Addr) (*arp.Packet, error) {
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	return arp.NewPacket(arp.OperationRequest, hw, ip, bcast, ip)
}
