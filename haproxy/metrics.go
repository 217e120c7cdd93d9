package haproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric collectors; register them with RegisterMetrics.
var (
	reloadsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edged", Subsystem: "haproxy", Name: "reloads_total",
		Help: "HAProxy reloads through the master socket, by result (ok, failed).",
	}, []string{"result"})
	runtimeOpsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edged", Subsystem: "haproxy", Name: "runtime_ops_total",
		Help: "Runtime API commands sent to HAProxy, by result (ok, failed).",
	}, []string{"result"})
	failuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edged", Subsystem: "haproxy", Name: "failures_total",
		Help: "Failed applies of a desired model, by stage (render, validate, reload, runtime).",
	}, []string{"stage"})
	applyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "edged", Subsystem: "haproxy", Name: "apply_duration_seconds",
		Help:    "Time to apply a desired model, by how (runtime: runtime API only; reload: render, haproxy -c and a confirmed reload).",
		Buckets: applyBuckets,
	}, []string{"how"})
	lastApplySuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "edged", Subsystem: "haproxy", Name: "last_apply_success",
		Help: "1 if the latest apply of the desired model succeeded (or none was tried yet), 0 while it fails (also while a refused model waits out its backoff).",
	})
)

// applyBuckets span a runtime-API update (~1 ms) to a reload of the
// reference pool's 1,279 frontends (render + check + reload ~0.8 s,
// README's benchmarks) on a loaded Raspberry Pi.
var applyBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// The how label of applyDuration.
const (
	howRuntime = "runtime"
	howReload  = "reload"
)

// Stages of failuresTotal.
var stages = []string{"render", "validate", "reload", "runtime"}

func init() {
	// Every series exists from the start, so rates and alerts see a 0
	// before the first failure.
	for _, r := range []string{"ok", "failed"} {
		reloadsTotal.WithLabelValues(r)
		runtimeOpsTotal.WithLabelValues(r)
	}
	for _, s := range stages {
		failuresTotal.WithLabelValues(s)
	}
	for _, h := range []string{howRuntime, howReload} {
		applyDuration.WithLabelValues(h)
	}
	lastApplySuccess.Set(1)
}

// observeApply records one apply's outcome.
func observeApply(how string, d time.Duration) {
	applyDuration.WithLabelValues(how).Observe(d.Seconds())
}

func setApplied(err error) {
	if err != nil {
		lastApplySuccess.Set(0)
		return
	}
	lastApplySuccess.Set(1)
}

// Collectors returns the package's metric collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{reloadsTotal, runtimeOpsTotal, failuresTotal, applyDuration, lastApplySuccess}
}

func result(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}
