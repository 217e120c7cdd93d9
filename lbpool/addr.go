package lbpool

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// u128 is an address as a 128-bit unsigned integer, so ranges of either family
// can be counted and walked without materialising them. IPv4 addresses use
// the low 32 bits.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[i+8])
	}
	return u
}

func (u u128) addr(f Family) netip.Addr {
	if f == IPv4 {
		v := uint32(u.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) less(v u128) bool { return u.cmp(v) < 0 }

func (u u128) add1() u128 {
	lo, c := bits.Add64(u.lo, 1, 0)
	return u128{hi: u.hi + c, lo: lo}
}

func (u u128) sub1() u128 {
	lo, b := bits.Sub64(u.lo, 1, 0)
	return u128{hi: u.hi - b, lo: lo}
}

func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	return u128{hi: u.hi - v.hi - b, lo: lo}
}

// sat is u as a uint64, saturating at the maximum.
func (u u128) sat() uint64 {
	if u.hi != 0 {
		return ^uint64(0)
	}
	return u.lo
}

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return ^uint64(0)
	}
	return s
}

// familyOf is the address family of a, treating IPv4-mapped IPv6 as IPv6.
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Family is the address family of the range.
func (r Range) Family() Family { return familyOf(r.First) }

// Contains reports whether a is inside r.
func (r Range) Contains(a netip.Addr) bool {
	return a.IsValid() && familyOf(a) == r.Family() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Size is the number of addresses in r, saturating at math.MaxUint64.
func (r Range) Size() uint64 {
	return satAdd(toU128(r.Last).sub(toU128(r.First)).sat(), 1) // a /64 or wider saturates
}

// String renders r as "A - B" (or a single address).
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + " - " + r.Last.String()
}

func (r Range) overlaps(o Range) bool {
	return r.Family() == o.Family() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// ParseRange parses one entry of a pool's addresses, in MetalLB's forms: a
// CIDR ("10.4.11.0/24", "fd00::/120"), a range "A - B" (spaces optional) or a
// single address. A CIDR with host bits set is refused, because it usually
// means the author meant a different network than the one they wrote.
func ParseRange(s string) (Range, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Range{}, fmt.Errorf("empty address entry: want a CIDR like 10.4.11.0/24 or a range like 10.4.11.0 - 10.4.15.254")
	}
	if strings.Contains(in, "/") {
		p, err := netip.ParsePrefix(in)
		if err != nil {
			return Range{}, fmt.Errorf("%q is not a valid CIDR: %w", s, err)
		}
		if p.Masked() != p {
			return Range{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
		}
		return prefixRange(p), nil
	}
	if first, last, ok := strings.Cut(in, "-"); ok {
		a, err := parseAddr(first)
		if err != nil {
			return Range{}, fmt.Errorf("%q: first address: %w", s, err)
		}
		b, err := parseAddr(last)
		if err != nil {
			return Range{}, fmt.Errorf("%q: last address: %w", s, err)
		}
		if familyOf(a) != familyOf(b) {
			return Range{}, fmt.Errorf("%q mixes IPv4 and IPv6: a range must stay in one address family", s)
		}
		if a.Compare(b) > 0 {
			return Range{}, fmt.Errorf("%q is reversed: the first address is after the last (did you mean %s - %s?)", s, b, a)
		}
		return Range{First: a, Last: b}, nil
	}
	a, err := parseAddr(in)
	if err != nil {
		return Range{}, fmt.Errorf("%q is neither a CIDR, a range \"A - B\" nor an address: %w", s, err)
	}
	return Range{First: a, Last: a}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q: zoned addresses cannot be pooled", s)
	}
	return a.Unmap(), nil
}

func prefixRange(p netip.Prefix) Range {
	first := p.Addr().Unmap()
	f := familyOf(first)
	width := 32
	if f == IPv6 {
		width = 128
	}
	host := width - p.Bits()
	u := toU128(first)
	// Set the host bits to get the last address.
	switch {
	case host >= 64:
		u.lo = ^uint64(0)
		u.hi |= (uint64(1) << (host - 64)) - 1
		if host == 128 {
			u.hi = ^uint64(0)
		}
	case host > 0:
		u.lo |= (uint64(1) << host) - 1
	}
	return Range{First: first, Last: u.addr(f)}
}

// buggy reports whether a is an IPv4 address ending in .0 or .255, which
// MetalLB's avoidBuggyIPs skips because some old clients mishandle them.
func buggy(u u128, f Family) bool {
	if f != IPv4 {
		return false
	}
	last := u.lo & 0xff
	return last == 0 || last == 0xff
}

// countBuggy counts the .0 and .255 addresses in [first, last] (IPv4).
func countBuggy(first, last uint64) uint64 {
	// Addresses x with x%256 == 0 in [first,last], plus those with x%256 == 255.
	zeros := last/256 - first/256
	if first%256 == 0 {
		zeros++
	}
	ffs := (last+1)/256 - (first+1)/256
	if (first+1)%256 == 0 {
		ffs++
	}
	return zeros + ffs
}
