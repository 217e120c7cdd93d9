package raft

import (
	"hash/fnv"
	"net/netip"
)

// HostState is what the replicated state knows about one edge host.
type HostState struct {
	ID string
	// Healthy is false once the leader saw the host's lease lapse.
	Healthy bool
	// Draining is set while the host shuts down gracefully (or cannot
	// serve, see Store.SetLocalHealthy): it keeps its raft membership but
	// announces nothing.
	Draining bool
	// AdminDrained is set by an operator (`edged drain`, SetAdminDrain) and
	// cleared only by one (`edged undrain`): it is replicated, so it holds
	// across restarts and elections, and the host announces nothing. Absent
	// from snapshots written before it existed, which restore as false.
	AdminDrained bool `json:",omitempty"`
}

// eligible reports whether a host may be given IPs at all.
func (h HostState) eligible() bool { return h.Healthy && !h.Draining && !h.AdminDrained }

// PickOwner chooses the host that announces ip of pool: the eligible host
// with the highest rendezvous score among hosts allowed for the pool (an
// empty or missing allow list allows every host). It returns "" when no
// host qualifies. Rendezvous hashing spreads IPs evenly and, when a host
// joins or leaves, moves only the IPs that host wins or loses.
// hosts must be sorted by ID for ties to be deterministic (they cannot tie
// unless the hash collides).
func PickOwner(ip netip.Addr, pool string, hosts []HostState, eligibility map[string][]string) string {
	allowed := eligibility[pool]
	best, bestScore := "", uint64(0)
	for _, h := range hosts {
		if !h.eligible() || (len(allowed) > 0 && !contains(allowed, h.ID)) {
			continue
		}
		s := score(ip, h.ID)
		if best == "" || s > bestScore || (s == bestScore && h.ID < best) {
			best, bestScore = h.ID, s
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// score is FNV-1a over (ip, host) finished with the splitmix64 mixer so
// nearby IPs give unrelated scores.
func score(ip netip.Addr, host string) uint64 {
	h := fnv.New64a()
	b := ip.As16()
	h.Write(b[:])
	h.Write([]byte{0})
	h.Write([]byte(host))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
