package lbpool

import (
	"net/netip"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// PoolEqual reports whether p and q configure the same pool: by meaning, so a
// pool that went through the raft log (which may hold empty slices where
// the config had none) equals the config's. It is the one equality of
// pools: the leader compares before it writes pools into raft, and the
// MetalLB watcher before it reports a change.
// (A function, not an Equal method: go-cmp would call that method on
// Pool itself and recurse.)
func PoolEqual(p, q Pool) bool {
	return cmp.Equal(p, q, cmpopts.EquateEmpty(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y }))
}

// PoolsEqual reports whether a and b hold equal pools in the same order.
func PoolsEqual(a, b []Pool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !PoolEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}
