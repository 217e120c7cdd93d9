package lbpool

import (
	"net/netip"
	"slices"
	"sort"
)

// famIndex maps a Family to an array index.
func famIndex(f Family) int {
	if f == IPv6 {
		return 1
	}
	return 0
}

// poolState is a configured pool plus its free addresses and counters.
type poolState struct {
	Pool
	free  [2]*freeSet // nil for a family the pool has no range of
	total [2]uint64
	inUse [2]uint64
}

func newPoolState(p Pool) *poolState {
	ps := &poolState{Pool: clonePool(p)}
	for _, r := range p.Ranges {
		f := r.Family()
		i := famIndex(f)
		if ps.free[i] == nil {
			ps.free[i] = newFreeSet(f, p.AvoidBuggyIPs)
		}
		ps.free[i].add(ival{toU128(r.First), toU128(r.Last)})
		n := r.Size()
		if p.AvoidBuggyIPs && f == IPv4 {
			n -= countBuggy(toU128(r.First).lo, toU128(r.Last).lo)
		}
		ps.total[i] = satAdd(ps.total[i], n)
	}
	return ps
}

// contains reports whether ip lies in one of the pool's ranges.
func (p *poolState) contains(ip netip.Addr) bool {
	for _, r := range p.Ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// allocatable reports whether ip may be handed out from this pool at all.
func (p *poolState) allocatable(ip netip.Addr) bool {
	f := familyOf(ip)
	return p.contains(ip) && !(p.AvoidBuggyIPs && buggy(toU128(ip), f))
}

// eligible applies serviceAllocation: namespaces and namespaceSelectors
// together name the namespaces served (either may match, as MetalLB resolves
// both into one namespace list), and serviceSelectors must match too.
func (p *poolState) eligible(req Request) bool {
	sa := p.Allocation
	if sa == nil {
		return true
	}
	if len(sa.Namespaces) > 0 || len(sa.NamespaceSelectors) > 0 {
		if !slices.Contains(sa.Namespaces, req.Namespace) && !anyMatch(sa.NamespaceSelectors, req.NamespaceLabels) {
			return false
		}
	}
	if len(sa.ServiceSelectors) > 0 && !anyMatch(sa.ServiceSelectors, req.ServiceLabels) {
		return false
	}
	return true
}

// byPriority orders pools for automatic assignment: set priorities first,
// lower first; pools without priority after them; ties keep config order.
func byPriority(pools []*poolState) []*poolState {
	out := slices.Clone(pools)
	prio := func(p *poolState) (bool, int) {
		if p.Allocation == nil || p.Allocation.Priority == nil {
			return false, 0
		}
		return true, *p.Allocation.Priority
	}
	sort.SliceStable(out, func(i, j int) bool {
		si, pi := prio(out[i])
		sj, pj := prio(out[j])
		if si != sj {
			return si
		}
		return pi < pj
	})
	return out
}

func anyMatch(sels []Selector, labels map[string]string) bool {
	for _, s := range sels {
		if s.Matches(labels) {
			return true
		}
	}
	return false
}

// Matches reports whether labels satisfy the selector; an empty selector
// matches everything, as in Kubernetes.
func (s Selector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, has := labels[r.Key]
		switch r.Operator {
		case "In":
			if !has || !slices.Contains(r.Values, v) {
				return false
			}
		case "NotIn":
			if has && slices.Contains(r.Values, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false // an unknown operator never matches; config validation refuses it
		}
	}
	return true
}

func clonePool(p Pool) Pool {
	p.Ranges = slices.Clone(p.Ranges)
	if p.Allocation != nil {
		sa := *p.Allocation
		if sa.Priority != nil {
			v := *sa.Priority
			sa.Priority = &v
		}
		sa.Namespaces = slices.Clone(sa.Namespaces)
		sa.NamespaceSelectors = cloneSelectors(sa.NamespaceSelectors)
		sa.ServiceSelectors = cloneSelectors(sa.ServiceSelectors)
		p.Allocation = &sa
	}
	return p
}

func cloneSelectors(in []Selector) []Selector {
	if in == nil {
		return nil
	}
	out := make([]Selector, len(in))
	for i, s := range in {
		if s.MatchLabels != nil {
			out[i].MatchLabels = make(map[string]string, len(s.MatchLabels))
			for k, v := range s.MatchLabels {
				out[i].MatchLabels[k] = v
			}
		}
		if s.MatchExpressions != nil {
			out[i].MatchExpressions = make([]SelectorRequirement, len(s.MatchExpressions))
		}
		for j, e := range s.MatchExpressions {
			out[i].MatchExpressions[j] = SelectorRequirement{Key: e.Key, Operator: e.Operator, Values: slices.Clone(e.Values)}
		}
	}
	return out
}
