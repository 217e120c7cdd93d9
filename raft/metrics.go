package raft

import (
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Store's Prometheus metrics. They belong to the Store, not
// to the package, so tests running several stores in one process count
// each on its own; Collector exports them.
type metrics struct {
	leaderChanges prometheus.Counter
	leaderSilent  prometheus.Counter
	commit        prometheus.Histogram
	renewals      *prometheus.CounterVec

	obsCh    chan hraft.Observation
	observer *hraft.Observer
	mu       sync.Mutex
	leader   hraft.ServerID
}

// commitBuckets spans a loopback commit (~1 ms with fsync) to a WAN one
// that is about to time out (commandTimeout is 2 s).
var commitBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

func newMetrics() *metrics {
	m := &metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edged_raft_leader_changes_total",
			Help: "Times this host learned of a new raft leader (itself or a peer).",
		}),
		leaderSilent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edged_raft_leader_silent_total",
			Help: "Times this host stood for election because the raft leader had been silent for heartbeatTimeout plus its stagger (prompt elections).",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edged_raft_commit_duration_seconds",
			Help:    "Time from proposing a command on the leader until it is committed and applied.",
			Buckets: commitBuckets,
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_raft_lease_renewals_total",
			Help: "Lease requests this host sent to the voters (one per voter per renewal), by result (ok, failed).",
		}, []string{"result"}),
	}
	// Both results exist from the start: the lease alert divides them.
	m.renewals.WithLabelValues("ok")
	m.renewals.WithLabelValues("failed")
	return m
}

// observe counts leader changes from hashicorp/raft's observations until
// stop is closed.
func (m *metrics) observe(r *hraft.Raft, stop <-chan struct{}) {
	m.obsCh = make(chan hraft.Observation, 16)
	m.observer = hraft.NewObserver(m.obsCh, false, func(o *hraft.Observation) bool {
		_, ok := o.Data.(hraft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(m.observer)
	go func() {
		for {
			select {
			case <-stop:
				r.DeregisterObserver(m.observer)
				return
			case o := <-m.obsCh:
				lo := o.Data.(hraft.LeaderObservation)
				m.mu.Lock()
				if lo.LeaderID != "" && lo.LeaderID != m.leader {
					m.leaderChanges.Inc()
				}
				if lo.LeaderID != "" {
					m.leader = lo.LeaderID
				}
				m.mu.Unlock()
			}
		}
	}()
}

func (m *metrics) renewal(ok bool) {
	r := "ok"
	if !ok {
		r = "failed"
	}
	m.renewals.WithLabelValues(r).Inc()
}

var (
	descState = prometheus.NewDesc("edged_raft_state",
		"1 for this host's current raft state (follower, candidate, leader, shutdown), 0 for the others.", []string{"state"}, nil)
	descTerm = prometheus.NewDesc("edged_raft_term",
		"Current raft term seen by this host.", nil, nil)
	descLeases = prometheus.NewDesc("edged_leases_held",
		"Addresses this host holds a valid announce lease for now (what it announces).", nil, nil)
)

var raftStates = []hraft.RaftState{hraft.Follower, hraft.Candidate, hraft.Leader, hraft.Shutdown}

// Collector returns a collector for this store's metrics: raft state and
// term, leader changes, prompt elections, commit latency, lease renewals
// and leases held.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descTerm
	ch <- descLeases
	c.s.met.leaderChanges.Describe(ch)
	c.s.met.leaderSilent.Describe(ch)
	c.s.met.commit.Describe(ch)
	c.s.met.renewals.Describe(ch)
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.raft.State()
	for _, rs := range raftStates {
		v := 0.0
		if rs == st {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, stateName(rs))
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(c.s.raft.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(descLeases, prometheus.GaugeValue, float64(c.s.leaseCount(time.Now())))
	c.s.met.leaderChanges.Collect(ch)
	c.s.met.leaderSilent.Collect(ch)
	c.s.met.commit.Collect(ch)
	c.s.met.renewals.Collect(ch)
}

func stateName(rs hraft.RaftState) string {
	switch rs {
	case hraft.Follower:
		return "follower"
	case hraft.Candidate:
		return "candidate"
	case hraft.Leader:
		return "leader"
	default:
		return "shutdown"
	}
}

// leaseCount is len(Leases(now)) without copying or sorting.
func (s *Store) leaseCount(now time.Time) int {
	ips, _ := s.LeaseSet(now)
	return len(ips)
}
