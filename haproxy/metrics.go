package haproxy

import "github.com/prometheus/client_golang/prometheus"

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
)

// Collectors returns the package's metric collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{reloadsTotal, runtimeOpsTotal, failuresTotal}
}

func result(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}
