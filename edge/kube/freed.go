package kube

import (
	"slices"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// freeWatch tells when Services waiting for an address are worth another
// try: the pool configuration changed, or an allocation was released or
// changed (its addresses moved, or its sharing facts changed so an address
// may now be shared). New allocations free nothing. Store notifications
// alone are no such sign: they also fire on every lease renewal and on each
// failed allocation (itself a raft apply), and retrying on those spams the
// raft log while a pool is exhausted.
type freeWatch struct {
	primed  bool
	version uint64
	held    map[string]lbpool.Allocation
}

// observe compares v with the previous observation and reports whether an
// address may have freed since. The first observation after reset reports
// true: what happened before it is unknown.
func (f *freeWatch) observe(v raft.View) bool {
	held := make(map[string]lbpool.Allocation, len(v.Allocations))
	for _, a := range v.Allocations {
		held[a.Key] = a
	}
	freed := !f.primed || v.ConfigVersion != f.version
	for key, old := range f.held {
		if freed {
			break
		}
		now, ok := held[key]
		freed = !ok || !sameAllocation(old, now)
	}
	f.primed, f.version, f.held = true, v.ConfigVersion, held
	return freed
}

// reset forgets the baseline (nothing is waiting, so nothing to compare).
func (f *freeWatch) reset() { *f = freeWatch{} }

func sameAllocation(a, b lbpool.Allocation) bool {
	return a.Key == b.Key && a.Pool == b.Pool && slices.Equal(a.IPs, b.IPs) && a.SharingKey == b.SharingKey &&
		slices.Equal(a.Ports, b.Ports) && a.TrafficPolicyCluster == b.TrafficPolicyCluster && a.Selector == b.Selector
}
