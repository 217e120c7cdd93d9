package edge

import "github.com/prometheus/client_golang/prometheus"

// MetalLB's configuration gauges (internal/k8s/controllers/stats.go), with
// MetalLB's names and meaning for edged's configuration: edged.yaml plus,
// with kubernetes.metallbCRDs, MetalLB's IPAddressPool and L2Advertisement
// objects. MetalLB's shipped alerts MetalLBConfigNotLoaded and
// MetalLBStaleConfig read them.
var (
	descConfigLoaded = prometheus.NewDesc("metallb_k8s_client_config_loaded_bool",
		"1 if the configuration (edged.yaml, and MetalLB's objects when kubernetes.metallbCRDs is on) was successfully loaded at least once.", nil, nil)
	descConfigStale = prometheus.NewDesc("metallb_k8s_client_config_stale_bool",
		"1 if running on a stale configuration, because the latest config (a reload of edged.yaml, or MetalLB's objects) failed to load.", nil, nil)
)

// configCollector reads the configuration state at scrape time: edged.yaml
// is loaded before the Appliance exists, so loaded waits only for the pool
// source (MetalLB's objects read once); stale is set by a refused reload
// of edged.yaml until a good one, and by refused MetalLB objects until a
// good set.
type configCollector struct{ a *Appliance }

func (c configCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConfigLoaded
	ch <- descConfigStale
}

func (c configCollector) Collect(ch chan<- prometheus.Metric) {
	loaded, stale := c.a.configState()
	ch <- prometheus.MustNewConstMetric(descConfigLoaded, prometheus.GaugeValue, boolValue(loaded))
	ch <- prometheus.MustNewConstMetric(descConfigStale, prometheus.GaugeValue, boolValue(stale))
}

// configState reports whether the configuration in force was loaded at
// least once, and whether it is stale (the latest load was refused).
func (a *Appliance) configState() (loaded, stale bool) {
	loaded, stale = true, a.reloads.failed.Load()
	if a.pools != nil {
		_, _, ok := a.pools.Pools()
		loaded = ok
		stale = stale || a.pools.PoolsErr() != nil
	}
	return loaded, stale
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
