package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/raft"
)

// stateCollector exports the replicated state at scrape time, so the
// numbers always match `edged status` and nothing polls in between. Names
// follow MetalLB's where they mean the same, so dashboards keep working.
type stateCollector struct {
	view func() raft.View
}

var (
	descAddrTotal = prometheus.NewDesc("metallb_allocator_addresses_total",
		"Number of usable IP addresses, per pool.", []string{"pool"}, nil)
	descAddrInUse = prometheus.NewDesc("metallb_allocator_addresses_in_use_total",
		"Number of IP addresses in use, per pool.", []string{"pool"}, nil)
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
	for _, d := range []*prometheus.Desc{descAddrTotal, descAddrInUse, descLeader, descHosts, descAssigned, descApplied} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	for _, s := range v.Stats {
		ch <- prometheus.MustNewConstMetric(descAddrTotal, prometheus.GaugeValue, float64(s.TotalV4)+float64(s.TotalV6), s.Pool)
		ch <- prometheus.MustNewConstMetric(descAddrInUse, prometheus.GaugeValue, float64(s.InUseV4+s.InUseV6), s.Pool)
	}
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
