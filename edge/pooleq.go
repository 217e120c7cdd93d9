package edge

import (
	"net/netip"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/goldentooth/edged/lbpool"
)

// poolEqual compares pool configurations by meaning: a pool that went
// through the raft log may hold empty slices where the config had none.
func poolEqual(a, b lbpool.Pool) bool {
	return cmp.Equal(a, b, cmpopts.EquateEmpty(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y }))
}
