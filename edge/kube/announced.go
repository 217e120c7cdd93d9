package kube

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// ReasonNodeAssigned is the Event reason MetalLB's speaker writes when a
// node starts announcing a Service (speaker/main.go); edged uses the same
// reason, so `kubectl get events --field-selector reason=nodeAssigned` and
// MetalLB's own tooling find edged's.
const ReasonNodeAssigned = "nodeAssigned"

// announcement is one IP of a Service and the edge host the raft state
// assigns it to ("" while no host is eligible).
type announcement struct {
	IP   netip.Addr
	Host string
}

// announced is what the raft state says about one Service's announcing:
// its IPs with their hosts, and the pool and labels that choose the
// interfaces (config.Config.PoolInterfaces).
type announced struct {
	IPs    []announcement
	Pool   string
	Labels map[string]string
}

func (a announced) equal(b announced) bool {
	return a.Pool == b.Pool && slices.Equal(a.IPs, b.IPs) && maps.Equal(a.Labels, b.Labels)
}

// announcements maps every Service key ("namespace/name") allocated in v
// to its announcing, IPs in the allocation's order. Static VIPs
// (edged.yaml's, no Service) are left out. Pure: a function of v alone.
func announcements(v raft.View) map[string]announced {
	owner := v.Owners()
	out := make(map[string]announced, len(v.Allocations))
	for _, al := range v.Allocations {
		if lbpool.IsStatic(al.Key) || len(al.IPs) == 0 {
			continue
		}
		as := make([]announcement, 0, len(al.IPs))
		for _, ip := range al.IPs {
			as = append(as, announcement{IP: ip, Host: owner[ip]})
		}
		out[al.Key] = announced{IPs: as, Pool: al.Pool, Labels: al.ServiceLabels}
	}
	return out
}

// announcers are the distinct hosts of as, in the order of their first IP;
// hosts of "" (no eligible host) are left out.
func announcers(as []announcement) []string {
	var hosts []string
	for _, a := range as {
		if a.Host != "" && !slices.Contains(hosts, a.Host) {
			hosts = append(hosts, a.Host)
		}
	}
	return hosts
}

// announcingValue is the value of the announcing-node annotation for as:
// the announcing hosts joined by commas ("edge2"; "edge1,edge3" for a dual-
// stack Service whose two IPs have different hosts), "" for none.
func announcingValue(as []announcement) string { return strings.Join(announcers(as), ",") }

// nodeAssignedMessages are the nodeAssigned Event messages for as, one per
// announcing host naming it and its IPs; MetalLB's wording, with the IPs.
func nodeAssignedMessages(as []announcement) []string {
	var out []string
	for _, h := range announcers(as) {
		var ips []string
		for _, a := range as {
			if a.Host == h {
				ips = append(ips, a.IP.String())
			}
		}
		out = append(out, fmt.Sprintf("announcing from node %q with protocol %q: %s", h, "layer2", strings.Join(ips, ", ")))
	}
	return out
}

// changedKeys returns (sorted) the keys whose announcements differ between
// old and cur, including keys only one of them has.
func changedKeys(old, cur map[string]announced) []string {
	var keys []string
	for k, a := range cur {
		if o, ok := old[k]; !ok || !o.equal(a) {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// poolCounters is an IPAddressPool's status as MetalLB (0.15+) writes it.
type poolCounters struct {
	AssignedIPv4, AssignedIPv6, AvailableIPv4, AvailableIPv6 int64
}

// countersOf converts raft's pool statistics to MetalLB's status fields:
// assigned = in use, available = total - in use, each clamped to int64
// (an IPv6 /64 holds more than MetalLB's int64 fields can say; MetalLB
// clamps at math.MaxInt64 too).
func countersOf(s lbpool.PoolStats) poolCounters {
	clamp := func(n uint64) int64 {
		if n > math.MaxInt64 {
			return math.MaxInt64
		}
		return int64(n)
	}
	free := func(total, used uint64) uint64 {
		if used > total { // addresses kept outside a shrunk pool
			return 0
		}
		return total - used
	}
	return poolCounters{
		AssignedIPv4: clamp(s.InUseV4), AssignedIPv6: clamp(s.InUseV6),
		AvailableIPv4: clamp(free(s.TotalV4, s.InUseV4)), AvailableIPv6: clamp(free(s.TotalV6, s.InUseV6)),
	}
}
