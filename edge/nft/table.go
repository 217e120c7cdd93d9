package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ErrApply wraps a failed nftables transaction: nothing of it took
// effect, the previous rules still forward.
var ErrApply = errors.New("nftables transaction refused")

// Table installs Forwards as edged's "ip edged" and "ip6 edged" tables in
// one network namespace and keeps conntrack in step. Its methods are safe
// for concurrent use.
type Table struct {
	ns netns.NsHandle // netns.None(): the caller's namespace

	mu      sync.Mutex
	applied []Forward // what the kernel holds (sorted)
}

// Open returns a Table for the calling process's network namespace. It
// touches nothing until Start.
func Open() *Table { return &Table{ns: netns.None()} }

// OpenAt returns a Table for network namespace ns (which the caller keeps
// open while the Table is used): tests drive a lab namespace with it.
func OpenAt(ns netns.NsHandle) *Table { return &Table{ns: ns} }

// Start deletes edged's tables, whatever a previous run left; after it
// nothing is forwarded.
func (t *Table) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.commit(func(c *nftables.Conn) error { remove(c); return nil }); err != nil {
		return err
	}
	t.applied = nil
	return nil
}

// Apply makes the tables forward exactly fs (any order) in one
// transaction, then deletes the conntrack entries of flows whose Forward
// is gone or whose endpoint left it (ready or draining); every other
// established flow keeps its endpoint. On a transaction error nothing
// changed. A conntrack error is returned wrapped (the rules are in place).
func (t *Table) Apply(fs []Forward) error {
	fs = slices.Clone(fs)
	slices.SortFunc(fs, compareForwards)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.commit(func(c *nftables.Conn) error { return program(c, fs) }); err != nil {
		return err
	}
	old := t.applied
	t.applied = fs
	return t.forget(staleFlows(old, fs))
}

// Applied returns what the tables forward now (sorted; a copy).
func (t *Table) Applied() []Forward {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.applied)
}

// Close deletes the tables and the conntrack entries of the flows they
// forwarded.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.commit(func(c *nftables.Conn) error { remove(c); return nil }); err != nil {
		return err
	}
	old := t.applied
	t.applied = nil
	return t.forget(staleFlows(old, nil))
}

// commit sends what queue queues as one transaction.
func (t *Table) commit(queue func(*nftables.Conn) error) error {
	var opts []nftables.ConnOption
	if t.ns.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(t.ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("nftables netlink: %w: %w", ErrApply, err)
	}
	if err := queue(c); err != nil {
		return fmt.Errorf("%w: %w", ErrApply, err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrApply, err)
	}
	return nil
}

// forget deletes the conntrack entries the filter matches, in both
// families.
func (t *Table) forget(f flowFilter) error {
	if len(f) == 0 {
		return nil
	}
	var h *netlink.Handle
	var err error
	if t.ns.IsOpen() {
		h, err = netlink.NewHandleAt(t.ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return fmt.Errorf("conntrack netlink: %w", err)
	}
	defer h.Close()
	var errs []error
	for _, fam := range []netlink.InetFamily{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete stale conntrack entries: %w", err)
	}
	return nil
}

// flow is a set of conntrack entries to delete: the flows to VIP:Port/
// Proto, all of them or only those to Endpoint.
type flow struct {
	k        key
	endpoint netip.AddrPort // zero: every flow to k
}

// flowFilter matches the conntrack entries of any of its flows.
type flowFilter []flow

// staleFlows returns the flows that old forwarded and cur does not: every
// flow of a Forward that is gone, and the flows of an endpoint that left
// its Forward (neither ready nor draining any more).
func staleFlows(old, cur []Forward) flowFilter {
	byKey := make(map[key]Forward, len(cur))
	for _, f := range cur {
		byKey[f.key()] = f
	}
	var out flowFilter
	for _, f := range old {
		g, ok := byKey[f.key()]
		if !ok {
			out = append(out, flow{k: f.key()})
			continue
		}
		for _, ep := range append(slices.Clone(f.Endpoints), f.Draining...) {
			if !slices.Contains(g.Endpoints, ep) && !slices.Contains(g.Draining, ep) {
				out = append(out, flow{k: f.key(), endpoint: ep})
			}
		}
	}
	return out
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter: the
// original direction went to a VIP:port/proto of the filter, and the
// reply comes from the flow's endpoint when one is named.
func (ff flowFilter) MatchConntrackFlow(c *netlink.ConntrackFlow) bool {
	dst, ok := netip.AddrFromSlice(c.Forward.DstIP)
	if !ok {
		return false
	}
	src, _ := netip.AddrFromSlice(c.Reverse.SrcIP)
	got := key{vip: dst.Unmap(), proto: Proto(c.Forward.Protocol), port: c.Forward.DstPort}
	from := netip.AddrPortFrom(src.Unmap(), c.Reverse.SrcPort)
	for _, f := range ff {
		if f.k == got && (!f.endpoint.IsValid() || f.endpoint == from) {
			return true
		}
	}
	return false
}
