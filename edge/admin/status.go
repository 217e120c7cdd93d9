// Package admin serves edged's local admin API on a unix socket (never a
// network port: only local users with access to the socket's directory can
// read it) and renders it for `edged status`.
package admin

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is what `edged status` shows: the raft group, pool usage and every
// allocation with the host that announces it.
type Status struct {
	Node        string       `json:"node"`
	RaftState   string       `json:"raftState"`
	Leader      string       `json:"leader"`
	Term        uint64       `json:"term"`
	Members     []Member     `json:"members"`
	Pools       []Pool       `json:"pools"`
	Allocations []Allocation `json:"allocations"`
	// StaticVIPs are the operator's own VIPs (edged.yaml staticVIPs) with
	// the host that announces each; they are not in Allocations.
	StaticVIPs []StaticVIP `json:"staticVIPs,omitempty"`
	// Leases are the IPs this host announces right now.
	Leases []string `json:"leases"`
	// HAProxy summarises the local HAProxy as edged last saw it.
	HAProxy HAProxy `json:"haproxy"`
	// Health is this host's own verdict on whether it can serve.
	Health Health `json:"health"`
}

// Health is the local health verdict (edge/health): while Healthy is false
// the host asks raft to move its IPs to other hosts.
type Health struct {
	Healthy bool      `json:"healthy"`
	Since   time.Time `json:"since,omitempty"`
	// LastError is the latest failed probe, also while recovering.
	LastError string `json:"lastError,omitempty"`
	// RecoveringSince is when the probes started passing again, while the
	// host waits out health.recoverAfter.
	RecoveringSince time.Time `json:"recoveringSince,omitempty"`
	// Starting: no probe round has passed since edged started.
	Starting bool `json:"starting,omitempty"`
}

// Member is one raft peer as the local host sees it.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	// Healthy: the host renews its lease (in `edged status` also: it is
	// not draining, so it may announce).
	Healthy bool `json:"healthy"`
	// Announce counts the IPs assigned to the host.
	Announce int  `json:"announces"`
	Leader   bool `json:"leader,omitempty"`
	// Draining: the host asked to hand its IPs over (it is shutting down,
	// or its local health check fails). AdminDrained: an operator drained
	// it (`edged drain`) until `edged undrain`.
	Draining     bool `json:"draining,omitempty"`
	AdminDrained bool `json:"adminDrained,omitempty"`
}

// Pool is one address pool's usage.
type Pool struct {
	Name    string `json:"name"`
	TotalV4 uint64 `json:"totalV4"`
	TotalV6 uint64 `json:"totalV6"`
	InUseV4 uint64 `json:"inUseV4"`
	InUseV6 uint64 `json:"inUseV6"`
}

// Allocation is one Service's addresses and their announcing hosts.
type Allocation struct {
	Service   string   `json:"service"`
	Pool      string   `json:"pool"`
	IPs       []string `json:"ips"`
	Announcer []string `json:"announcers"`
}

// StaticVIP is one static VIP in the raft state and its announcing host
// (empty while none may announce it).
type StaticVIP struct {
	Name   string `json:"name"`
	IP     string `json:"ip"`
	Holder string `json:"holder"`
}

// HAProxy is the local HAProxy's state as the reload manager last saw it.
type HAProxy struct {
	Frontends  int       `json:"frontends"`
	Backends   int       `json:"backends"`
	Reloads    uint64    `json:"reloads"`
	LastReload time.Time `json:"lastReload,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
}

// WriteText renders s for a terminal.
func WriteText(w io.Writer, s Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "node:\t%s (%s, term %d)\n", s.Node, s.RaftState, s.Term)
	fmt.Fprintf(tw, "leader:\t%s\n", orDash(s.Leader))
	fmt.Fprintf(tw, "leases:\t%s\n", orDash(strings.Join(s.Leases, " ")))
	fmt.Fprintf(tw, "haproxy:\t%d frontends, %d backends, %d reloads%s\n",
		s.HAProxy.Frontends, s.HAProxy.Backends, s.HAProxy.Reloads, errSuffix(s.HAProxy.LastError))
	fmt.Fprintf(tw, "health:\t%s\n", healthLine(s.Health))
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tVOTER\tHEALTHY\tANNOUNCES")
	for _, m := range s.Members {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%t\t%d\n", m.ID, m.Address, m.Voter, m.Healthy, m.Announce)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "POOL\tIN USE\tTOTAL (v4/v6)")
	for _, p := range s.Pools {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\n", p.Name, p.InUseV4, p.InUseV6, p.TotalV4, p.TotalV6)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SERVICE\tPOOL\tIP\tANNOUNCER")
	allocs := append([]Allocation(nil), s.Allocations...)
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].Service < allocs[j].Service })
	for _, a := range allocs {
		for i, ip := range a.IPs {
			ann := "-"
			if i < len(a.Announcer) && a.Announcer[i] != "" {
				ann = a.Announcer[i]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Service, a.Pool, ip, ann)
		}
	}
	if len(s.StaticVIPs) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "STATIC VIP\tIP\tANNOUNCER")
		for _, v := range s.StaticVIPs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, v.IP, orDash(v.Holder))
		}
	}
	return tw.Flush()
}

// healthLine renders the local health verdict in one line.
func healthLine(h Health) string {
	switch {
	case h.Starting:
		return "starting, announcing nothing until every probe passes: " + orDash(h.LastError)
	case h.Healthy && h.LastError == "":
		return "ok"
	case h.Healthy:
		return "ok (latest failed probe: " + h.LastError + ")"
	case !h.RecoveringSince.IsZero():
		return fmt.Sprintf("UNHEALTHY, IPs moved away; probes pass since %s (was: %s)", h.RecoveringSince.Format(time.RFC3339), h.LastError)
	default:
		return fmt.Sprintf("UNHEALTHY since %s, IPs moved away: %s", h.Since.Format(time.RFC3339), h.LastError)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", last error: " + e
}
