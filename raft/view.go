package raft

import (
	"net/netip"
	"time"

	"github.com/goldentooth/edged/lbpool"
)

// View is a read-only copy of the replicated state plus this host's view of
// the group. Slices are sorted (allocations by key, assignments by IP,
// hosts by ID) and owned by the caller.
type View struct {
	// ConfigVersion counts applied SetPools commands.
	ConfigVersion uint64
	Pools         []lbpool.Pool
	Eligibility   map[string][]string
	Allocations   []lbpool.Allocation
	Assignments   []IPAssignment
	Hosts         []HostState
	Stats         []lbpool.PoolStats
	// Leader is the current leader's ID and address, empty if unknown.
	Leader     string
	LeaderAddr string
	// Self is this host's ID and IsLeader whether it leads now.
	Self     string
	IsLeader bool
	// AppliedIndex is the last log index applied to this replica.
	AppliedIndex uint64
}

// Owners maps every assigned IP to the host the state assigns it to (""
// while no host is eligible).
func (v View) Owners() map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(v.Assignments))
	for _, a := range v.Assignments {
		out[a.IP] = a.Owner
	}
	return out
}

// Lease lets this host announce IP until Until (exclusive).
type Lease struct {
	IP    netip.Addr
	Until time.Time
}

// LeaseObserver is told, in real time, when this host takes, extends or
// drops a lease. Implementations must be fast and must not call the Store.
type LeaseObserver interface {
	// LeaseHeld reports that host holds ip from start until end; a later call
	// for the same ip extends the interval.
	LeaseHeld(host string, ip netip.Addr, start, end time.Time)
	// LeaseDropped reports that host gave ip up at `at`, before its end.
	LeaseDropped(host string, ip netip.Addr, at time.Time)
}
