package announce

import "github.com/prometheus/client_golang/prometheus"

// Metric names follow MetalLB's speaker (internal/layer2) so dashboards keep working.
var (
	requestsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metallb", Subsystem: "layer2", Name: "requests_received",
		Help: "Number of layer2 requests received for owned IPs",
	}, []string{"ip"})
	responsesSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metallb", Subsystem: "layer2", Name: "responses_sent",
		Help: "Number of layer2 responses sent for owned IPs",
	}, []string{"ip"})
	gratuitousSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metallb", Subsystem: "layer2", Name: "gratuitous_sent",
		Help: "Number of gratuitous layer2 packets sent for owned IPs",
	}, []string{"ip"})
	// takeoversTotal is edged's own: the failovers onto this host, one per IP
	// (MetalLB counts the burst's packets per IP, not the takeovers).
	takeoversTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "edged", Subsystem: "announce", Name: "takeovers_total",
		Help: "IPs this host began announcing after not holding them (a new IP, a failover onto this host, a lease back after a partition); each starts a gratuitous burst.",
	})
)

// Collectors returns the package collectors for registration by the caller.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{requestsReceived, responsesSent, gratuitousSent, takeoversTotal}
}

func countRequest(ip string)    { requestsReceived.WithLabelValues(ip).Inc() }
func countResponse(ip string)   { responsesSent.WithLabelValues(ip).Inc() }
func countGratuitous(ip string) { gratuitousSent.WithLabelValues(ip).Inc() }
func countTakeovers(n int)      { takeoversTotal.Add(float64(n)) }
