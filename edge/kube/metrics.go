package kube

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/cache"
	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/client-go/util/workqueue"
)

// client-go reports its REST client and work queue metrics through
// process-wide hooks; these adapters export them under the names
// Kubernetes components and controller-runtime (MetalLB) use, so the same
// dashboards work. They are installed once per process (client-go allows
// only one registration) by NewPart; Collectors returns them for the
// registry of the process that runs a Part.
var (
	restRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rest_client_requests_total",
		Help: "Number of HTTP requests to the Kubernetes API, partitioned by status code, method, and host.",
	}, []string{"code", "method", "host"})
	restLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rest_client_request_duration_seconds",
		Help:    "Request latency to the Kubernetes API in seconds, by verb and host.",
		Buckets: []float64{.005, .025, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60},
	}, []string{"verb", "host"})
	restRateLimit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rest_client_rate_limiter_duration_seconds",
		Help:    "Client-side rate limiter latency in seconds, by verb and host.",
		Buckets: []float64{.005, .025, .1, .25, .5, 1, 2, 4, 8, 15, 30, 60},
	}, []string{"verb", "host"})

	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_depth", Help: "Current depth of the work queue.",
	}, []string{"name"})
	queueAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_adds_total", Help: "Total number of adds handled by the work queue.",
	}, []string{"name"})
	queueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_queue_duration_seconds", Help: "How long in seconds an item stays in the work queue before being requested.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 10, 7),
	}, []string{"name"})
	queueWork = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_work_duration_seconds", Help: "How long in seconds processing an item from the work queue takes.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 10, 7),
	}, []string{"name"})
	queueUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_unfinished_work_seconds",
		Help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers.",
	}, []string{"name"})
	queueLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_longest_running_processor_seconds", Help: "Seconds the longest running worker has been processing an item.",
	}, []string{"name"})
	queueRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_retries_total", Help: "Total number of retries handled by the work queue.",
	}, []string{"name"})

	// updates and updateErrors are MetalLB's controller counters
	// (internal/k8s/controllers/stats.go): every Service sync processed,
	// and those that failed and are retried.
	updates = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metallb", Subsystem: "k8s_client", Name: "updates_total",
		Help: "Number of k8s object updates that have been processed.",
	})
	updateErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metallb", Subsystem: "k8s_client", Name: "update_errors_total",
		Help: "Number of k8s object updates that failed for some reason.",
	})

	// reconcileLatency is the Service controller's reconcile latency: the
	// same observation as workqueue_work_duration_seconds, under edged's
	// own prefix.
	reconcileLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edged_reconcile_duration_seconds",
		Help:    "Time to reconcile one object (allocate or release, write status), by controller queue.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"queue"})
)

var kubeMetricsOnce sync.Once

// installKubeMetrics hooks the adapters into client-go. It must run before
// the controller creates its work queue, which reads the provider once.
func installKubeMetrics() {
	kubeMetricsOnce.Do(func() {
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestResult:      resultAdapter{},
			RequestLatency:     latencyAdapter{restLatency},
			RateLimiterLatency: latencyAdapter{restRateLimit},
		})
		workqueue.SetProvider(queueProvider{})
	})
}

// kubeCollectors are the client-go metrics, for an Appliance's registry.
// Collectors returns the Kubernetes client's collectors: client-go's REST
// client and work queue metrics under Kubernetes' names, and
// edged_reconcile_duration_seconds.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{restRequests, restLatency, restRateLimit,
		queueDepth, queueAdds, queueLatency, queueWork, queueUnfinished, queueLongest, queueRetries,
		reconcileLatency, updates, updateErrors}
}

type resultAdapter struct{}

func (resultAdapter) Increment(_ context.Context, code, method, host string) {
	restRequests.WithLabelValues(code, method, host).Inc()
}

type latencyAdapter struct{ h *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, d time.Duration) {
	a.h.WithLabelValues(verb, u.Host).Observe(d.Seconds())
}

type queueProvider struct{}

func (queueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return queueDepth.WithLabelValues(name)
}
func (queueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return queueAdds.WithLabelValues(name)
}
func (queueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return queueLatency.WithLabelValues(name)
}
func (queueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return bothHistograms{queueWork.WithLabelValues(name), reconcileLatency.WithLabelValues(name)}
}
func (queueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return queueUnfinished.WithLabelValues(name)
}
func (queueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return queueLongest.WithLabelValues(name)
}
func (queueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return queueRetries.WithLabelValues(name)
}

// bothHistograms observes into two histograms.
type bothHistograms [2]prometheus.Observer

func (b bothHistograms) Observe(v float64) { b[0].Observe(v); b[1].Observe(v) }

// descWithoutIP is the Services edged handles that hold no address.
var descWithoutIP = prometheus.NewDesc("edged_services_without_ip",
	"LoadBalancer Services edged handles (type and class) that hold no address in the raft state: pool exhausted, no eligible pool, a requested address taken, or not allocated yet. The same on every host (its cache and the replicated state).",
	nil, nil)

// Collector returns the part's own collector: edged_services_without_ip,
// computed at scrape time from the cache and the raft state (nothing
// before Run has them).
func (k *Part) Collector() prometheus.Collector { return partCollector{k} }

type partCollector struct{ k *Part }

func (c partCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWithoutIP }

func (c partCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWithoutIP, prometheus.GaugeValue, float64(c.k.withoutIP()))
}

// withoutIP counts the handled Services with no allocation.
func (k *Part) withoutIP() int {
	shared, store := k.cache.Load(), k.store.Load()
	if shared == nil || store == nil {
		return 0
	}
	svcs, err := shared.Services.List(everything)
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range svcs {
		if !Handled(s, k.cfg.Kubernetes.LoadBalancerClass) {
			continue
		}
		if a, ok := store.Lookup(cache.MetaObjectToName(s).String()); !ok || len(a.IPs) == 0 {
			n++
		}
	}
	return n
}
