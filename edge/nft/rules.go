package nft

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of edged's two tables, "ip edged" and "ip6 edged".
const TableName = "edged"

// Chain names. Per-Forward chains are named after the Forward
// ("svc-10.4.11.5-udp-53"), so `nft list table ip edged` reads on its own.
const (
	chainFilter  = "filter-prerouting"
	chainNATPre  = "nat-prerouting"
	chainNATOut  = "nat-output"
	chainNATPost = "nat-postrouting"
)

// filterPriority runs the source-range and no-endpoint checks before DNAT
// (-100), on the VIP the client sent to.
var filterPriority = nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest - 10)

// ipsDstNAT is conntrack's IPS_DST_NAT status bit (linux/netfilter/
// nf_conntrack_common.h): the flow was DNATed.
const ipsDstNAT = 1 << 5

// ICMP codes for port unreachable (RFC 792, RFC 4443).
const (
	icmpPortUnreachable   = 3
	icmpv6PortUnreachable = 4
)

// family is one of edged's two tables.
type family struct {
	table     nftables.TableFamily
	nat       uint32 // NFPROTO_* for the NAT expression
	is4       bool
	addrLen   uint32
	saddr     uint32 // offsets in the network header
	daddr     uint32
	rejectICM uint8
}

var families = []family{
	{table: nftables.TableFamilyIPv4, nat: unix.NFPROTO_IPV4, is4: true, addrLen: 4, saddr: 12, daddr: 16, rejectICM: icmpPortUnreachable},
	{table: nftables.TableFamilyIPv6, nat: unix.NFPROTO_IPV6, is4: false, addrLen: 16, saddr: 8, daddr: 24, rejectICM: icmpv6PortUnreachable},
}

// program queues, on c, the replacement of both tables with fs (sorted).
// Nothing is sent until c.Flush, which commits it as one transaction. A
// family with no Forward has no table at all, so an idle host hooks
// nothing into its packet path.
func program(c *nftables.Conn, fs []Forward) error {
	for _, fam := range families {
		t := &nftables.Table{Name: TableName, Family: fam.table}
		// add (a no-op when it exists), delete, add: replaces whatever was
		// there, leftovers of a crashed run included, in this transaction.
		c.AddTable(t)
		c.DelTable(t)
		var mine []Forward
		for _, f := range fs {
			if f.VIP.Is4() == fam.is4 {
				mine = append(mine, f)
			}
		}
		if len(mine) == 0 {
			continue
		}
		c.AddTable(t)
		if err := fam.write(c, t, mine); err != nil {
			return err
		}
	}
	return nil
}

// remove queues the deletion of both tables.
func remove(c *nftables.Conn) {
	for _, fam := range families {
		t := &nftables.Table{Name: TableName, Family: fam.table}
		c.AddTable(t)
		c.DelTable(t)
	}
}

func (fam family) write(c *nftables.Conn, t *nftables.Table, fs []Forward) error {
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio})
	}
	filter := base(chainFilter, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, filterPriority)
	pre := base(chainNATPre, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := base(chainNATOut, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base(chainNATPost, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	masq := map[netip.Addr]bool{}
	for _, f := range fs {
		name := chainName(f)
		match := fam.match(f)
		if f.Restricted {
			src := c.AddChain(&nftables.Chain{Name: "src-" + name, Table: t})
			fam.sources(c, t, src, f)
			c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: with(match, &expr.Verdict{Kind: expr.VerdictJump, Chain: src.Name})})
		}
		if len(f.Endpoints) == 0 {
			c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: with(match, &expr.Counter{},
				&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: fam.rejectICM})})
			continue
		}
		svc := c.AddChain(&nftables.Chain{Name: "svc-" + name, Table: t})
		if err := fam.balance(c, t, svc, name, f.Endpoints); err != nil {
			return fmt.Errorf("rules for %s: %w", name, err)
		}
		for _, ch := range []*nftables.Chain{pre, out} {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: with(match, &expr.Verdict{Kind: expr.VerdictGoto, Chain: svc.Name})})
		}
		if !masq[f.VIP] {
			masq[f.VIP] = true
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: fam.masquerade(f.VIP)})
		}
	}
	return nil
}

// balance fills svc: DNAT to the one endpoint, or pick one at random per
// new flow (numgen random mod n, a verdict map to one chain per endpoint:
// kube-proxy's nftables layout).
func (fam family) balance(c *nftables.Conn, t *nftables.Table, svc *nftables.Chain, name string, eps []netip.AddrPort) error {
	if len(eps) == 1 {
		c.AddRule(&nftables.Rule{Table: t, Chain: svc, Exprs: fam.dnat(eps[0])})
		return nil
	}
	vmap := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict}
	elems := make([]nftables.SetElement, len(eps))
	for i, ep := range eps {
		ch := c.AddChain(&nftables.Chain{Name: fmt.Sprintf("ep-%s-%d", name, i), Table: t})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: fam.dnat(ep)})
		// numgen writes a host-endian integer.
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ch.Name}}
	}
	if err := c.AddSet(vmap, elems); err != nil {
		return err
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: svc, Exprs: []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(eps)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, SetName: vmap.Name, SetID: vmap.ID, IsDestRegSet: true, DestRegister: 0},
	}})
	return nil
}

// match is "daddr == VIP, l4proto == proto, dport == port" (th dport: UDP
// and SCTP both carry the destination port at offset 2).
func (fam family) match(f Forward) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.daddr, Len: fam.addrLen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: f.VIP.AsSlice()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(f.Proto)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(f.Port)},
	}
}

// sources fills src: return for each admitted prefix, drop the rest.
func (fam family) sources(c *nftables.Conn, t *nftables.Table, src *nftables.Chain, f Forward) {
	for _, p := range f.Sources {
		mask := netipMask(p, int(fam.addrLen))
		c.AddRule(&nftables.Rule{Table: t, Chain: src, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.saddr, Len: fam.addrLen},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: fam.addrLen, Mask: mask, Xor: make([]byte, fam.addrLen)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: src, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
}

// dnat rewrites the destination to ep.
func (fam family) dnat(ep netip.AddrPort) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: ep.Addr().AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(ep.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam.nat, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// masquerade is "ct status dnat, ct original daddr == vip: masquerade":
// exactly the flows edged DNATed to vip leave with the edge host's
// address, so the endpoints' replies come back through it.
func (fam family) masquerade(vip netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Ct{Key: expr.CtKeyDST, Direction: 0, Register: 1}, // IP_CT_DIR_ORIGINAL
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vip.AsSlice()},
		&expr.Masq{},
	}
}

// with returns match followed by more (a fresh slice per rule).
func with(match []expr.Any, more ...expr.Any) []expr.Any {
	return append(append([]expr.Any(nil), match...), more...)
}

// chainName names a Forward's chains: "10.4.11.5-udp-53".
func chainName(f Forward) string {
	return fmt.Sprintf("%s-%s-%d", f.VIP, strings.ToLower(f.Proto.String()), f.Port)
}

// netipMask is p's netmask, n bytes long.
func netipMask(p netip.Prefix, n int) []byte {
	m := make([]byte, n)
	bits := p.Bits()
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}
