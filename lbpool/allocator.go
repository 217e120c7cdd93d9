package lbpool

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// Allocator hands out pool addresses to Services. It is not safe for
// concurrent use: the raft state machine serialises calls.
type Allocator struct {
	pools []*poolState
	// auto is pools in the order automatic assignment tries them.
	auto   []*poolState
	byName map[string]*poolState
	allocs map[string]Allocation
	// holders lists the keys holding each address (more than one only for
	// shared IPs).
	holders map[addrKey]holderSet
}

// holderSet is the sorted keys holding one address, the first inline: nearly
// every address has exactly one holder, so that costs no allocation.
type holderSet struct {
	first string
	rest  []string
}

func (h holderSet) len() int {
	if h.first == "" {
		return 0
	}
	return 1 + len(h.rest)
}

// keys returns the holders, sorted, in a new slice.
func (h holderSet) keys() []string {
	if h.first == "" {
		return nil
	}
	return append([]string{h.first}, h.rest...)
}

// with returns h plus key, keeping the order.
func (h holderSet) with(key string) holderSet {
	switch {
	case h.first == "":
		return holderSet{first: key}
	case key < h.first:
		return holderSet{first: key, rest: append([]string{h.first}, h.rest...)}
	}
	i, found := slices.BinarySearch(h.rest, key)
	if found || key == h.first {
		return h
	}
	return holderSet{first: h.first, rest: slices.Insert(slices.Clip(h.rest), i, key)}
}

// without returns h minus key.
func (h holderSet) without(key string) holderSet {
	if key == h.first {
		if len(h.rest) == 0 {
			return holderSet{}
		}
		return holderSet{first: h.rest[0], rest: slices.Clip(h.rest[1:])}
	}
	if i, found := slices.BinarySearch(h.rest, key); found {
		return holderSet{first: h.first, rest: slices.Delete(slices.Clone(h.rest), i, i+1)}
	}
	return h
}

// addrKey is an address as a pointer-free map key (IPv4 in its IPv4-mapped
// IPv6 form), cheaper to hash and invisible to the garbage collector.
type addrKey u128

func keyOf(ip netip.Addr) addrKey { return addrKey(toU128(netip.AddrFrom16(ip.As16()))) }

func (k addrKey) addr() netip.Addr { return u128(k).addr(IPv6).Unmap() }

// New returns an Allocator for pools (validated with ValidatePools).
func New(pools []Pool) (*Allocator, error) {
	a := &Allocator{byName: map[string]*poolState{}, allocs: map[string]Allocation{}, holders: map[addrKey]holderSet{}}
	if err := a.SetPools(pools); err != nil {
		return nil, err
	}
	return a, nil
}

// SetPools replaces the pool configuration. Existing allocations are kept,
// even those whose addresses no longer lie in any pool (so a config mistake
// never moves a live IP); each allocation's Pool follows its first address.
func (a *Allocator) SetPools(pools []Pool) error {
	if err := ValidatePools(pools); err != nil {
		return err
	}
	a.pools = a.pools[:0]
	a.byName = make(map[string]*poolState, len(pools))
	for _, p := range pools {
		ps := newPoolState(p)
		a.pools = append(a.pools, ps)
		a.byName[p.Name] = ps
	}
	a.auto = byPriority(a.pools)
	ips := make([]netip.Addr, 0, len(a.holders))
	for k := range a.holders {
		ips = append(ips, k.addr())
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range ips {
		if p := a.poolOf(ip); p != nil {
			a.markUsed(p, ip)
		}
	}
	for k, al := range a.allocs {
		if len(al.IPs) > 0 {
			if p := a.poolOf(al.IPs[0]); p != nil && al.Pool != p.Name {
				al.Pool = p.Name
				a.allocs[k] = al
			}
		}
	}
	return nil
}

func (a *Allocator) markUsed(p *poolState, ip netip.Addr) {
	i := famIndex(familyOf(ip))
	if p.free[i] != nil {
		p.free[i].take(toU128(ip))
	}
	p.inUse[i]++
}

func (a *Allocator) markFree(p *poolState, ip netip.Addr) {
	i := famIndex(familyOf(ip))
	if p.free[i] != nil && p.allocatable(ip) {
		p.free[i].put(toU128(ip))
	}
	p.inUse[i]--
}

func (a *Allocator) poolOf(ip netip.Addr) *poolState {
	for _, p := range a.pools {
		if p.contains(ip) {
			return p
		}
	}
	return nil
}

// PoolOf names the pool whose ranges hold ip.
func (a *Allocator) PoolOf(ip netip.Addr) (string, bool) {
	if p := a.poolOf(ip.Unmap()); p != nil {
		return p.Name, true
	}
	return "", false
}

// Pools returns a copy of the pool configuration, in config order.
func (a *Allocator) Pools() []Pool {
	out := make([]Pool, len(a.pools))
	for i, p := range a.pools {
		out[i] = clonePool(p.Pool)
	}
	return out
}

// Lookup returns the allocation held by key.
func (a *Allocator) Lookup(key string) (Allocation, bool) {
	al, ok := a.allocs[key]
	if !ok {
		return Allocation{}, false
	}
	return cloneAlloc(al), true
}

// Labels returns the Service labels key's allocation records, without a
// copy (nil when key holds nothing): callers must not change the map.
func (a *Allocator) Labels(key string) map[string]string {
	return a.allocs[key].ServiceLabels
}

// Allocations returns every allocation, sorted by key.
func (a *Allocator) Allocations() []Allocation {
	keys := make([]string, 0, len(a.allocs))
	for k := range a.allocs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Allocation, len(keys))
	for i, k := range keys {
		out[i] = cloneAlloc(a.allocs[k])
	}
	return out
}

// Holders returns the keys holding ip, sorted.
func (a *Allocator) Holders(ip netip.Addr) []string {
	return a.holders[keyOf(ip.Unmap())].keys()
}

// Stats counts each pool's addresses, in config order. A shared address
// counts once.
func (a *Allocator) Stats() []PoolStats {
	out := make([]PoolStats, len(a.pools))
	for i, p := range a.pools {
		out[i] = PoolStats{Pool: p.Name, TotalV4: p.total[0], TotalV6: p.total[1], InUseV4: p.inUse[0], InUseV6: p.inUse[1]}
	}
	return out
}

// Restore loads allocations (from a snapshot) into an allocator that holds
// none. Addresses outside every pool are kept, as SetPools keeps them.
func (a *Allocator) Restore(allocs []Allocation) error {
	if len(a.allocs) != 0 {
		return fmt.Errorf("restore: %w: allocator already holds %d allocations", ErrBadRequest, len(a.allocs))
	}
	for _, al := range allocs {
		if al.Key == "" {
			return fmt.Errorf("restore: %w: allocation without key", ErrBadRequest)
		}
		if _, dup := a.allocs[al.Key]; dup {
			return fmt.Errorf("restore %s: %w: duplicate key", al.Key, ErrBadRequest)
		}
		a.insert(cloneAlloc(al))
	}
	return nil
}

// Release frees key's addresses and returns what it held.
func (a *Allocator) Release(key string) (Allocation, bool) {
	al, ok := a.allocs[key]
	if !ok {
		return Allocation{}, false
	}
	a.remove(key)
	return al, true
}

// insert records al, taking its addresses out of the free sets.
func (a *Allocator) insert(al Allocation) {
	a.allocs[al.Key] = al
	for _, ip := range al.IPs {
		k := keyOf(ip)
		h := a.holders[k]
		if h.len() == 0 {
			if p := a.poolOf(ip); p != nil {
				a.markUsed(p, ip)
			}
		}
		a.holders[k] = h.with(al.Key)
	}
}

// remove forgets key, returning addresses nobody else holds to the free sets.
func (a *Allocator) remove(key string) {
	al := a.allocs[key]
	delete(a.allocs, key)
	for _, ip := range al.IPs {
		k := keyOf(ip)
		h := a.holders[k].without(key)
		if h.len() > 0 {
			a.holders[k] = h
			continue
		}
		delete(a.holders, k)
		if p := a.poolOf(ip); p != nil {
			a.markFree(p, ip)
		}
	}
}

func cloneAlloc(al Allocation) Allocation {
	al.IPs = slices.Clone(al.IPs)
	al.Ports = slices.Clone(al.Ports)
	al.ServiceLabels = cloneLabels(al.ServiceLabels)
	return al
}
