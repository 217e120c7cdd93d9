package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// stateCollector exports the replicated state at scrape time, so the
// numbers always match `edged status` and nothing polls in between. Names,
// labels and meanings follow MetalLB's controller (internal/allocator) and
// speaker (metallb_speaker_announced) where edged has the same concept, so
// MetalLB's alert rules and dashboards keep working; docs/metrics.md lists
// every MetalLB metric and what edged exports for it.
type stateCollector struct {
	view func() raft.View
}

// speakerProtocol is metallb_speaker_announced's protocol label for an
// ARP/NDP announcement (MetalLB's config.Layer2).
const speakerProtocol = "layer2"

var (
	descAddrTotal = prometheus.NewDesc("metallb_allocator_addresses_total",
		"Number of usable IP addresses, per pool.", []string{"pool"}, nil)
	descAddrTotalV4 = prometheus.NewDesc("metallb_allocator_ipv4_addresses_total",
		"Number of usable IPV4 addresses, per pool.", []string{"pool"}, nil)
	descAddrTotalV6 = prometheus.NewDesc("metallb_allocator_ipv6_addresses_total",
		"Number of usable IPV6 addresses, per pool.", []string{"pool"}, nil)
	descAddrInUse = prometheus.NewDesc("metallb_allocator_addresses_in_use_total",
		"Number of IP addresses in use, per pool.", []string{"pool"}, nil)
	descAddrInUseV4 = prometheus.NewDesc("metallb_allocator_ipv4_addresses_in_use_total",
		"Number of IPV4 addresses in use, per pool.", []string{"pool"}, nil)
	descAddrInUseV6 = prometheus.NewDesc("metallb_allocator_ipv6_addresses_in_use_total",
		"Number of IPV6 addresses in use, per pool.", []string{"pool"}, nil)
	descServices = prometheus.NewDesc("metallb_allocator_services_allocated_total",
		"Number of services allocated, per pool.", []string{"pool"}, nil)
	descAnnounced = prometheus.NewDesc("metallb_speaker_announced",
		"Services being announced from this node (1 per Service and IP this host is assigned to announce). This is desired state: the host announces while it also holds the IP's raft lease (edged_leases_held).",
		[]string{"service", "protocol", "node", "ip"}, nil)
	descLeader = prometheus.NewDesc("edged_raft_leader",
		"1 if this host is the raft leader.", nil, nil)
	descHosts = prometheus.NewDesc("edged_raft_hosts",
		"Edge hosts in the replicated state, by health.", []string{"healthy"}, nil)
	descAssigned = prometheus.NewDesc("edged_announce_assigned_ips",
		"IP addresses assigned to each edge host for announcing.", []string{"node"}, nil)
	descApplied = prometheus.NewDesc("edged_raft_applied_index",
		"Last raft log index applied on this host.", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAddrTotal, descAddrTotalV4, descAddrTotalV6, descAddrInUse,
		descAddrInUseV4, descAddrInUseV6, descServices, descAnnounced, descLeader, descHosts, descAssigned, descApplied} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	collectPools(ch, v)
	collectAnnounced(ch, v)
	leader := 0.0
	if v.IsLeader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	healthy := map[bool]float64{true: 0, false: 0}
	for _, h := range v.Hosts {
		healthy[h.Healthy]++
	}
	ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, healthy[true], "true")
	ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, healthy[false], "false")
	per := map[string]float64{}
	for _, h := range v.Hosts {
		per[h.ID] = 0
	}
	for _, a := range v.Assignments {
		if a.Owner != "" {
			per[a.Owner]++
		}
	}
	for node, n := range per {
		ch <- prometheus.MustNewConstMetric(descAssigned, prometheus.GaugeValue, n, node)
	}
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(v.AppliedIndex))
}

// collectPools exports MetalLB's allocator gauges: every pool, in total and
// per address family, and the Services allocated from it (static VIPs are
// the appliance's own, not Services).
func collectPools(ch chan<- prometheus.Metric, v raft.View) {
	services := map[string]float64{}
	for _, a := range v.Allocations {
		if !lbpool.IsStatic(a.Key) {
			services[a.Pool]++
		}
	}
	for _, s := range v.Stats {
		for _, m := range []struct {
			d *prometheus.Desc
			v float64
		}{
			{descAddrTotal, float64(s.TotalV4) + float64(s.TotalV6)},
			{descAddrTotalV4, float64(s.TotalV4)},
			{descAddrTotalV6, float64(s.TotalV6)},
			{descAddrInUse, float64(s.InUseV4) + float64(s.InUseV6)},
			{descAddrInUseV4, float64(s.InUseV4)},
			{descAddrInUseV6, float64(s.InUseV6)},
			{descServices, services[s.Pool]},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v, s.Pool)
		}
	}
}

// collectAnnounced exports metallb_speaker_announced for the IPs assigned
// to this host: one series per Service on the IP (several when Services
// share it), as MetalLB's speaker labels them ("namespace/name").
func collectAnnounced(ch chan<- prometheus.Metric, v raft.View) {
	if v.Self == "" {
		return
	}
	owner := v.Owners()
	for _, al := range v.Allocations {
		if lbpool.IsStatic(al.Key) {
			continue
		}
		for _, ip := range al.IPs {
			if owner[ip] == v.Self {
				ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, 1, al.Key, speakerProtocol, v.Self, ip.String())
			}
		}
	}
}
