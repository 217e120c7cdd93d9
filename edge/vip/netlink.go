package vip

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifaProto is IFA_PROTO from include/uapi/linux/if_addr.h (Linux 6.1): the
// "address protocol", a byte the kernel stores with an address and reports
// in every dump, meant for telling who added it. Neither x/sys/unix nor
// vishvananda/netlink know it yet, so add and list speak netlink here.
const ifaProto = 11

// loAddr is one address on lo as the kernel reports it.
type loAddr struct {
	ip    netip.Addr
	bits  int
	label string
	proto uint8
}

// list returns the addresses on the link with index idx, with their
// IFA_PROTO (0 when the kernel reports none).
func list(idx int) ([]loAddr, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		// An interrupted dump may be incomplete; New then misses a
		// leftover, never takes an address that is not edged's.
		return nil, err
	}
	var out []loAddr
	for _, m := range msgs {
		msg := nl.DeserializeIfAddrmsg(m)
		if int(msg.Index) != idx {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, fmt.Errorf("parse address: %w", err)
		}
		a := loAddr{bits: int(msg.Prefixlen)}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_ADDRESS, unix.IFA_LOCAL:
				if ip, ok := netip.AddrFromSlice(at.Value); ok {
					a.ip = ip.Unmap()
				}
			case unix.IFA_LABEL:
				if n := len(at.Value); n > 0 {
					a.label = string(at.Value[:n-1])
				}
			case ifaProto:
				if len(at.Value) == 1 {
					a.proto = at.Value[0]
				}
			}
		}
		if a.ip.IsValid() {
			out = append(out, a)
		}
	}
	return out, nil
}

// add puts ip as a host address (/32 or /128) on the link with index idx,
// marked with Proto (and, for IPv4, Label). It fails with EEXIST when the
// address is already there, whoever added it.
func add(idx int, ip netip.Addr) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	family, bits := unix.AF_INET, 32
	if ip.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(idx)
	msg.Prefixlen = uint8(bits)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip.AsSlice()))
	if ip.Is4() {
		req.AddData(nl.NewRtAttr(unix.IFA_LABEL, nl.ZeroTerminated(Label)))
	}
	req.AddData(nl.NewRtAttr(ifaProto, []byte{Proto}))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// del removes edged's host address ip from lo. For IPv4 the label makes
// the kernel match only edged's address; IPv6 deletion matches address and
// prefix only, which is why Set deletes only what it recorded as its own.
func del(lo netlink.Link, ip netip.Addr) error {
	return netlink.AddrDel(lo, addr(ip))
}

// errExists reports whether err says the address is already there.
func errExists(err error) bool { return errors.Is(err, unix.EEXIST) }
