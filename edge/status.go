package edge

import (
	"time"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// statusOf turns the raft view and this host's leases into what `edged
// status` shows; static VIPs are listed apart from the Services.
func statusOf(v raft.View, leases []raft.Lease, peers map[string]string) admin.Status {
	st := admin.Status{Node: v.Self, Leader: v.Leader, RaftState: "follower"}
	if v.IsLeader {
		st.RaftState = "leader"
	}
	owner := v.Owners()
	count := map[string]int{}
	for _, host := range owner {
		count[host]++
	}
	for _, h := range v.Hosts {
		st.Members = append(st.Members, admin.Member{ID: h.ID, Address: peers[h.ID], Voter: true, Leader: h.ID == v.Leader,
			Healthy: h.Healthy && !h.Draining && !h.AdminDrained, Draining: h.Draining, AdminDrained: h.AdminDrained, Announce: count[h.ID]})
	}
	for _, s := range v.Stats {
		st.Pools = append(st.Pools, admin.Pool{Name: s.Pool, TotalV4: s.TotalV4, TotalV6: s.TotalV6, InUseV4: s.InUseV4, InUseV6: s.InUseV6})
	}
	for _, al := range v.Allocations {
		if name, static := lbpool.StaticName(al.Key); static {
			for _, ip := range al.IPs {
				st.StaticVIPs = append(st.StaticVIPs, admin.StaticVIP{Name: name, IP: ip.String(), Holder: owner[ip]})
			}
			continue
		}
		a := admin.Allocation{Service: al.Key, Pool: al.Pool}
		for _, ip := range al.IPs {
			a.IPs = append(a.IPs, ip.String())
			a.Announcer = append(a.Announcer, owner[ip])
		}
		st.Allocations = append(st.Allocations, a)
	}
	for _, l := range leases {
		st.Leases = append(st.Leases, l.IP.String())
	}
	return st
}

// leaseTick is how often the announcer is handed fresh leases between
// change notifications: a quarter of the lease, so a renewed lease reaches
// the announcer long before the old expiry.
func leaseTick(lease time.Duration) time.Duration {
	if t := lease / 4; t > time.Millisecond {
		return t
	}
	return time.Millisecond
}
