package lbpool

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Allocate gives req.Key addresses that satisfy req: the requested IPs, or
// else the lowest free (or compatibly shared) address of each wanted family
// from the requested pool, or else from the first eligible auto-assign pool
// in priority order. Every family comes from the same pool.
//
// With req.PreferDualStack, a family no pool can give is left out (see
// allocate for which pool is chosen), and a key holding fewer families than
// req wants keeps its addresses and gains a missing family once its pool
// can give one (a range added by a pool edit, an address freed), never by
// moving to another pool.
//
// A key that already holds an allocation satisfying req keeps it unchanged
// (its sharing facts are refreshed). Otherwise a new allocation is tried with
// the old addresses counted free; if that fails the old one stays and the
// error is returned, so nothing is ever lost.
func (a *Allocator) Allocate(req Request) (Allocation, error) {
	req, err := normalize(req)
	if err != nil {
		return Allocation{}, err
	}
	if cur, ok := a.allocs[req.Key]; ok {
		if a.satisfies(cur, req) {
			a.remove(req.Key)
			kept := withFacts(Allocation{Key: req.Key, Pool: cur.Pool, IPs: slices.Clone(cur.IPs)}, req)
			a.insert(kept)
			return cloneAlloc(kept), nil
		}
		old := cloneAlloc(cur)
		a.remove(req.Key)
		var got Allocation
		if a.holds(old, req) { // PreferDualStack, and its pool can give a missing family now
			got, err = a.fromPool(a.byName[old.Pool], req, old.IPs, true)
		} else {
			got, err = a.allocate(req)
		}
		if err != nil {
			a.insert(old)
			return Allocation{}, err
		}
		return got, nil
	}
	return a.allocate(req)
}

// Current returns req.Key's allocation when Allocate(req) would return it
// unchanged: same addresses and pool, and the same sharing facts. Callers
// use it to compare before they write (a raft entry per unchanged Service
// and resync is pure cost). It changes nothing.
func (a *Allocator) Current(req Request) (Allocation, bool) {
	req, err := normalize(req)
	if err != nil {
		return Allocation{}, false
	}
	cur, ok := a.allocs[req.Key]
	if !ok || !a.satisfies(cur, req) || !sameFacts(cur, req) {
		return Allocation{}, false
	}
	return cloneAlloc(cur), true
}

// sameFacts reports whether al already records req's sharing facts and
// labels.
func sameFacts(al Allocation, req Request) bool {
	return al.SharingKey == req.SharingKey && slices.Equal(al.Ports, req.Ports) &&
		al.TrafficPolicyCluster == req.TrafficPolicyCluster && al.Selector == req.Selector &&
		maps.Equal(al.ServiceLabels, req.ServiceLabels)
}

// normalize checks req and fills Families from the requested IPs.
func normalize(req Request) (Request, error) {
	bad := func(format string, args ...any) (Request, error) {
		return req, fmt.Errorf("%s: %w: %s", req.Key, ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if req.Key == "" {
		return bad("empty key")
	}
	req.IPs = slices.Clone(req.IPs)
	var seenIP, seen [2]bool // indexed by famIndex
	for i, ip := range req.IPs {
		if !ip.IsValid() {
			return bad("invalid requested address")
		}
		req.IPs[i] = ip.Unmap()
		f := familyOf(req.IPs[i])
		if seenIP[famIndex(f)] {
			return bad("more than one IPv%d address requested (at most one per family)", f)
		}
		seenIP[famIndex(f)] = true
	}
	if len(req.Families) == 0 {
		for _, ip := range req.IPs {
			req.Families = append(req.Families, familyOf(ip))
		}
		if len(req.Families) == 0 {
			req.Families = []Family{IPv4}
		}
	}
	for _, f := range req.Families {
		if f != IPv4 && f != IPv6 {
			return bad("unknown address family %d", f)
		}
		if seen[famIndex(f)] {
			return bad("family IPv%d listed twice", f)
		}
		seen[famIndex(f)] = true
	}
	for i, f := range []Family{IPv4, IPv6} {
		if seenIP[i] && !seen[i] {
			return bad("requested an IPv%d address but the service does not ask for that family", f)
		}
	}
	return req, nil
}

func withFacts(al Allocation, req Request) Allocation {
	al.SharingKey = req.SharingKey
	al.Ports = slices.Clone(req.Ports)
	al.TrafficPolicyCluster = req.TrafficPolicyCluster
	al.Selector = req.Selector
	al.ServiceLabels = cloneLabels(req.ServiceLabels)
	return al
}

// cloneLabels copies labels; empty becomes nil, so an allocation compares
// and encodes the same however the labels reached it.
func cloneLabels(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	return maps.Clone(labels)
}

// satisfies reports whether cur still meets req. Under PreferDualStack an
// allocation lacking a wanted family meets it while its pool cannot give
// that family (no range of it, none free or shareable, or the pool is gone):
// so it is kept, not reallocated on every sync, and picks the family up
// (Allocate) as soon as the pool can give it.
func (a *Allocator) satisfies(cur Allocation, req Request) bool {
	if !a.holds(cur, req) {
		return false
	}
	if len(cur.IPs) == len(req.Families) {
		return true
	}
	p := a.byName[cur.Pool]
	for _, f := range missing(cur, req) {
		if p != nil && p.contains(cur.IPs[0]) && a.gives(p, f, req) {
			return false
		}
	}
	return true
}

// holds reports whether cur meets req but for families it lacks, which
// only PreferDualStack allows: the requested pool and addresses, every
// address of a wanted family, each family at most once, no conflict.
func (a *Allocator) holds(cur Allocation, req Request) bool {
	if req.Pool != "" && cur.Pool != req.Pool {
		return false
	}
	n := 0
	for _, f := range req.Families {
		if slices.ContainsFunc(cur.IPs, func(ip netip.Addr) bool { return familyOf(ip) == f }) {
			n++
		}
	}
	if n != len(cur.IPs) || n == 0 || (n != len(req.Families) && !req.PreferDualStack) {
		return false
	}
	for _, ip := range req.IPs {
		if !slices.Contains(cur.IPs, ip) {
			return false
		}
	}
	for _, ip := range cur.IPs {
		if a.conflict(ip, req) != nil {
			return false
		}
	}
	return true
}

// missing returns the families req wants that cur lacks.
func missing(cur Allocation, req Request) []Family {
	var out []Family
	for _, f := range req.Families {
		if !slices.ContainsFunc(cur.IPs, func(ip netip.Addr) bool { return familyOf(ip) == f }) {
			out = append(out, f)
		}
	}
	return out
}

// gives reports whether p has an address of family f free or shareable
// with req.
func (a *Allocator) gives(p *poolState, f Family, req Request) bool {
	_, ok := a.pick(p, f, req)
	return ok
}

func (a *Allocator) allocate(req Request) (Allocation, error) {
	if len(req.IPs) > 0 {
		return a.allocateRequested(req)
	}
	if req.Pool != "" {
		p, ok := a.byName[req.Pool]
		if !ok {
			return Allocation{}, fmt.Errorf("%s: pool %q: %w", req.Key, req.Pool, ErrUnknownPool)
		}
		if !p.eligible(req) {
			return Allocation{}, fmt.Errorf("%s: pool %q: %w (serviceAllocation excludes namespace %q or the service's labels)", req.Key, req.Pool, ErrNotEligible, req.Namespace)
		}
		return a.fromPool(p, req, nil, req.PreferDualStack)
	}
	return a.allocateAuto(req)
}

// allocateAuto tries the auto-assign pools that serve req in priority
// order: the first that gives every wanted family wins. Under
// PreferDualStack, when none does, MetalLB's fallback (its
// findBestPoolForService): the first pool that gives the first family,
// else the first that gives the second, with what it has.
func (a *Allocator) allocateAuto(req Request) (Allocation, error) {
	tried := 0
	var first, second *poolState
	prefer := req.PreferDualStack && len(req.Families) > 1
	for _, p := range a.auto {
		if !p.AutoAssign || !p.eligible(req) {
			continue
		}
		tried++
		if al, err := a.fromPool(p, req, nil, false); err == nil {
			return al, nil
		}
		if prefer && first == nil && a.gives(p, req.Families[0], req) {
			first = p
		}
		if prefer && second == nil && a.gives(p, req.Families[1], req) {
			second = p
		}
	}
	for _, p := range []*poolState{first, second} {
		if p != nil {
			return a.fromPool(p, req, nil, true)
		}
	}
	if tried == 0 {
		return Allocation{}, fmt.Errorf("%s: %w: no auto-assign pool serves namespace %q", req.Key, ErrNotEligible, req.Namespace)
	}
	if len(req.Families) > 1 && !prefer {
		return Allocation{}, fmt.Errorf("%s: %w (%d eligible pools full or without a range of every family; RequireDualStack takes addresses of both families from one pool)", req.Key, ErrPoolExhausted, tried)
	}
	return Allocation{}, fmt.Errorf("%s: %w (%d eligible pools full)", req.Key, ErrPoolExhausted, tried)
}

func (a *Allocator) allocateRequested(req Request) (Allocation, error) {
	p := a.poolOf(req.IPs[0])
	for _, ip := range req.IPs {
		q := a.poolOf(ip)
		if q == nil {
			return Allocation{}, fmt.Errorf("%s: %s: %w", req.Key, ip, ErrNotInPool)
		}
		if q != p {
			return Allocation{}, fmt.Errorf("%s: %w: %s is in pool %q but %s is in pool %q; all addresses of a service come from one pool",
				req.Key, ErrBadRequest, req.IPs[0], p.Name, ip, q.Name)
		}
		if !p.allocatable(ip) {
			return Allocation{}, fmt.Errorf("%s: %s: %w: pool %q has avoidBuggyIPs and the address ends in .0 or .255", req.Key, ip, ErrNotInPool, p.Name)
		}
		if err := a.conflict(ip, req); err != nil {
			return Allocation{}, err
		}
	}
	if req.Pool != "" && req.Pool != p.Name {
		return Allocation{}, fmt.Errorf("%s: %s is in pool %q, not the requested pool %q: %w", req.Key, req.IPs[0], p.Name, req.Pool, ErrNotInPool)
	}
	if !p.eligible(req) {
		return Allocation{}, fmt.Errorf("%s: pool %q: %w (serviceAllocation excludes namespace %q or the service's labels)", req.Key, p.Name, ErrNotEligible, req.Namespace)
	}
	return a.fromPool(p, req, req.IPs, req.PreferDualStack)
}

// fromPool picks one address per family from p (fixed ones as given) and
// records the allocation. With some, a family p cannot give is left out,
// but at least one address must be had.
func (a *Allocator) fromPool(p *poolState, req Request, fixed []netip.Addr, some bool) (Allocation, error) {
	// One backing array holds the stored addresses and the caller's copy,
	// each capped so neither can grow into the other.
	buf := make([]netip.Addr, 2*len(req.Families))
	n := 0
	var lacking []Family
	for _, f := range req.Families {
		i := slices.IndexFunc(fixed, func(ip netip.Addr) bool { return familyOf(ip) == f })
		if i >= 0 {
			buf[n], n = fixed[i], n+1
			continue
		}
		ip, ok := a.pick(p, f, req)
		if !ok {
			lacking = append(lacking, f)
			if some {
				continue
			}
			return Allocation{}, a.lackErr(p, req, lacking)
		}
		buf[n], n = ip, n+1
	}
	if n == 0 {
		return Allocation{}, a.lackErr(p, req, lacking)
	}
	al := Allocation{Key: req.Key, Pool: p.Name, IPs: buf[:n:n]}
	al = withFacts(al, req)
	a.insert(al)
	out := al
	out.IPs = buf[n : 2*n : 2*n]
	copy(out.IPs, al.IPs)
	out.Ports = slices.Clone(al.Ports)
	out.ServiceLabels = cloneLabels(al.ServiceLabels)
	return out, nil
}

// lackErr says why p could not give the families in lacking: no range of
// a family, or none free.
func (a *Allocator) lackErr(p *poolState, req Request, lacking []Family) error {
	var why []string
	for _, f := range lacking {
		if p.free[famIndex(f)] == nil {
			why = append(why, fmt.Sprintf("no IPv%d range", f))
		} else {
			why = append(why, fmt.Sprintf("no free IPv%d address", f))
		}
	}
	return fmt.Errorf("%s: pool %q has %s: %w", req.Key, p.Name, strings.Join(why, " and "), ErrPoolExhausted)
}

// pick returns the lowest address of family f in p that is free or can be
// shared with req.
func (a *Allocator) pick(p *poolState, f Family, req Request) (netip.Addr, bool) {
	var best netip.Addr
	if fs := p.free[famIndex(f)]; fs != nil {
		if u, ok := fs.lowest(); ok {
			best = u.addr(f)
		}
	}
	if req.SharingKey != "" {
		// Shared candidates: addresses held by the same sharing key. The
		// minimum does not depend on map order.
		for k, hs := range a.holders {
			ip := k.addr()
			if familyOf(ip) != f || (best.IsValid() && !ip.Less(best)) || !p.contains(ip) {
				continue
			}
			if h := a.allocs[hs.first]; h.SharingKey == req.SharingKey && a.conflict(ip, req) == nil {
				best = ip
			}
		}
	}
	return best, best.IsValid()
}

// conflict says why req may not hold ip next to its current holders.
func (a *Allocator) conflict(ip netip.Addr, req Request) error {
	hs := a.holders[keyOf(ip)]
	if hs.len() == 0 {
		return nil
	}
	check := func(k string) error {
		if k == req.Key {
			return nil
		}
		if err := sharingOK(a.allocs[k], req); err != nil {
			return fmt.Errorf("%s: %s held by %s: %w: %v", req.Key, ip, k, ErrInUse, err)
		}
		return nil
	}
	if err := check(hs.first); err != nil {
		return err
	}
	for _, k := range hs.rest {
		if err := check(k); err != nil {
			return err
		}
	}
	return nil
}

// sharingOK applies MetalLB's allow-shared-ip rules: the same non-empty
// sharing key, no protocol+port in common, and the same backends (both
// externalTrafficPolicy Cluster, or both Local with the same pod selector).
func sharingOK(h Allocation, req Request) error {
	if h.SharingKey == "" || req.SharingKey == "" {
		return errors.New("neither service allows sharing (metallb.universe.tf/allow-shared-ip)")
	}
	if h.SharingKey != req.SharingKey {
		return fmt.Errorf("sharing keys differ (%q vs %q)", h.SharingKey, req.SharingKey)
	}
	if backendKey(h.TrafficPolicyCluster, h.Selector) != backendKey(req.TrafficPolicyCluster, req.Selector) {
		return errors.New("both services need externalTrafficPolicy Cluster, or Local with the same selector")
	}
	for _, p := range req.Ports {
		if slices.Contains(h.Ports, p) {
			return fmt.Errorf("both use %s/%d", p.Protocol, p.Port)
		}
	}
	return nil
}

func backendKey(cluster bool, selector string) string {
	if cluster {
		return ""
	}
	return "local:" + selector
}
