package nft

import "github.com/prometheus/client_golang/prometheus"

// Results of an apply (the result label of edged_forward_applies_total).
const (
	resultOK = "ok"
	// resultError: the transaction was refused; the previous rules stay.
	resultError = "error"
	// resultConntrack: the rules are in place, but stale conntrack entries
	// could not be deleted (their flows reach a gone endpoint until they
	// time out).
	resultConntrack = "conntrack_error"
)

var (
	forwardedPorts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "edged", Subsystem: "forward", Name: "ports",
		Help: "VIP:ports this host forwards with nftables (held leases only), by protocol",
	}, []string{"protocol"})
	applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edged", Subsystem: "forward", Name: "applies_total",
		Help: "nftables rule applies, by result (ok, error, conntrack_error)",
	}, []string{"result"})
)

func init() {
	for _, p := range []Proto{UDP, SCTP} {
		forwardedPorts.WithLabelValues(p.String())
	}
	for _, r := range []string{resultOK, resultError, resultConntrack} {
		applies.WithLabelValues(r)
	}
}

// Collectors returns the package collectors for registration by the caller.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{forwardedPorts, applies}
}

func countApply(result string) { applies.WithLabelValues(result).Inc() }

// setForwarded sets the gauge from what is applied.
func setForwarded(fs []Forward) {
	n := map[Proto]int{}
	for _, f := range fs {
		n[f.Proto]++
	}
	for _, p := range []Proto{UDP, SCTP} {
		forwardedPorts.WithLabelValues(p.String()).Set(float64(n[p]))
	}
}
