// Package health decides whether this edge host can serve the addresses it
// announces, and tells raft: a host whose HAProxy stops answering, or whose
// announce interfaces all lost carrier, asks the leader to move its IPs to
// other hosts (keepalived's track_process/track_script, for an edge group).
//
// Guarantees:
//   - A host is marked unhealthy after FailAfter consecutive failed rounds
//     (a round fails when any probe fails or outlasts Timeout), so one slow
//     answer does not move every VIP; a probe failure wrapping ErrGone
//     (nothing listens on HAProxy's socket any more: the process is gone,
//     not slow) marks it unhealthy at once, so a dead HAProxy is noticed
//     within one Interval (200 ms by default).
//   - It is marked healthy again only after every probe has passed for
//     RecoverAfter without a failure, so a flapping HAProxy does not drag
//     its VIPs back and forth.
//   - A host starts unhealthy (raft.Config.StartUnhealthy, set by the
//     appliance for a gating Monitor) and becomes healthy at its first
//     round in which every probe passes, without waiting RecoverAfter: a
//     restarted host takes IPs only once its HAProxy serves the current
//     configuration, and without delay.
//   - Raft is told the first round's verdict, then only changes.
//   - A host that is unhealthy everywhere drains everywhere: if no host can
//     serve, the VIPs go dark, as with keepalived in FAULT on every node.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/notify"
	"github.com/goldentooth/edged/raft"
)

// ErrGone marks a probe failure that cannot be a slow answer (a refused
// connection: nothing listens): it makes the host unhealthy at once,
// without waiting for FailAfter rounds.
var ErrGone = errors.New("gone")

// Probe is one check of this host's ability to serve. Check must return
// when ctx ends; its error says what failed, for logs and `edged status`.
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config sets the rhythm of the checks (edged.yaml's health section).
type Config struct {
	Interval     time.Duration
	Timeout      time.Duration
	FailAfter    int
	RecoverAfter time.Duration
}

// Setter is what the Monitor tells (raft.Store.SetLocalHealthy).
type Setter interface{ SetLocalHealthy(bool) }

// Monitor runs the probes and keeps raft told; it is an edge.Part and an
// edge.StatusProvider.
type Monitor struct {
	probes []Probe
	log    *slog.Logger
	met    *metrics
	beat   notify.Heartbeat

	mu  sync.Mutex
	cfg Config // replaced by Reload
	st  state
}

// New returns a Monitor over probes; with no probes it reports healthy and
// never tells raft anything.
func New(cfg Config, log *slog.Logger, probes ...Probe) *Monitor {
	m := &Monitor{cfg: cfg, probes: probes, log: log, met: newMetrics(probes), st: state{healthy: true}}
	if m.GatesAnnouncements() {
		m.st = state{starting: true}
		m.met.healthy.Set(0)
	}
	return m
}

// GatesAnnouncements reports whether the Monitor has probes: then the
// host must open raft unhealthy (raft.Config.StartUnhealthy) and wait for
// the Monitor's first passing round.
func (m *Monitor) GatesAnnouncements() bool { return len(m.probes) > 0 }

// Name implements edge.Part.
func (m *Monitor) Name() string { return "health" }

// Ready implements edge.Part: health never holds readiness back (an
// unhealthy host is up, it just announces nothing).
func (m *Monitor) Ready() bool { return true }

// Run probes every Interval until ctx ends and tells store the verdict.
func (m *Monitor) Run(ctx context.Context, store *raft.Store) error {
	return m.run(ctx, store)
}

func (m *Monitor) run(ctx context.Context, to Setter) error {
	if len(m.probes) == 0 {
		return nil
	}
	cfg := m.config()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	first := true
	for {
		m.beat.Beat()
		errs := m.round(ctx, cfg.Timeout)
		if ctx.Err() != nil {
			return nil
		}
		m.mu.Lock()
		changed := m.st.step(time.Now(), errs, m.cfg)
		healthy, why := m.st.healthy, m.st.lastErr
		m.mu.Unlock()
		m.met.observe(m.probes, errs, healthy)
		if changed || first {
			to.SetLocalHealthy(healthy)
		}
		if changed {
			switch {
			case healthy && first:
				m.log.Info("host healthy: announcing", "probes", m.Names())
			case healthy:
				m.log.Info("host healthy again: announcing", "after", cfg.RecoverAfter)
			default:
				m.log.Error("host cannot serve: handing its IPs to other hosts", "err", why)
			}
		}
		first = false
		if now := m.config(); now.Interval != cfg.Interval {
			t.Reset(now.Interval)
		}
		cfg = m.config()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round runs every probe once, each bounded by timeout; errs[i] is probe i's.
func (m *Monitor) round(ctx context.Context, timeout time.Duration) []error {
	errs := make([]error, len(m.probes))
	var wg sync.WaitGroup
	for i, p := range m.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Check(pctx) }()
			select {
			case err := <-done:
				errs[i] = err
			case <-pctx.Done():
				errs[i] = fmt.Errorf("no answer within %v", timeout)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", m.probes[i].Name, err)
		}
	}
	return errs
}

// config is the configuration in force.
func (m *Monitor) config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Reload implements edge.Reloadable: new timings apply from the next
// round. Turning a probe on or off needs a restart (the probes are wired at
// start); the appliance says so.
func (m *Monitor) Reload(c *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = Settings(c.Health)
	return nil
}

// Alive implements edge.Liveness: the probe loop turned within its bound
// (every probe is bounded by Timeout, so a turn takes at most about
// Interval + Timeout).
func (m *Monitor) Alive() error {
	cfg := m.config()
	return m.beat.Check("health probe loop", 4*(cfg.Interval+cfg.Timeout)+time.Second)
}

// Healthy reports the current verdict.
func (m *Monitor) Healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.healthy
}

// Report implements edge.StatusProvider.
func (m *Monitor) Report(st *admin.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := admin.Health{Healthy: m.st.healthy, Since: m.st.since}
	if m.st.lastErr != nil {
		h.LastError = m.st.lastErr.Error()
	}
	if !m.st.healthy && !m.st.okSince.IsZero() {
		h.RecoveringSince = m.st.okSince
	}
	h.Starting = m.st.starting
	st.Health = h
}

// state is the verdict and what it hangs on; step is its only writer.
type state struct {
	healthy bool
	// starting: no round has passed yet since start; the first one that
	// does makes the host healthy at once.
	starting bool
	since    time.Time // of the current verdict
	fails    int       // consecutive failed rounds
	okSince  time.Time // first passing round of the current run of passes
	lastErr  error     // the latest failure (kept while recovering)
}

// step folds one round's results taken at now into s and reports whether
// the verdict changed.
func (s *state) step(now time.Time, errs []error, cfg Config) bool {
	if err := errors.Join(errs...); err != nil && s.starting {
		s.lastErr = err
		return false
	}
	if s.starting {
		s.healthy, s.starting, s.since, s.lastErr = true, false, now, nil
		return true
	}
	if err := errors.Join(errs...); err != nil {
		s.fails++
		s.okSince = time.Time{}
		s.lastErr = err
		if s.healthy && (s.fails >= cfg.FailAfter || errors.Is(err, ErrGone)) {
			s.healthy, s.since = false, now
			return true
		}
		return false
	}
	s.fails = 0
	if s.healthy {
		s.lastErr = nil
		return false
	}
	if s.okSince.IsZero() {
		s.okSince = now
	}
	if now.Sub(s.okSince) >= cfg.RecoverAfter {
		s.healthy, s.since, s.okSince = true, now, time.Time{}
		return true
	}
	return false
}

// metrics are the Monitor's Prometheus series.
type metrics struct {
	probeUp *prometheus.GaugeVec
	healthy prometheus.Gauge
}

func newMetrics(probes []Probe) *metrics {
	m := &metrics{
		probeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edged_health_probe_up",
			Help: "1 if the probe passed in the latest round, 0 if it failed."}, []string{"probe"}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edged_health_healthy",
			Help: "1 while this host may announce (its probes pass), 0 while it asks raft to move its IPs away."}),
	}
	m.healthy.Set(1)
	for _, p := range probes {
		m.probeUp.WithLabelValues(p.Name).Set(1)
	}
	return m
}

func (m *metrics) observe(probes []Probe, errs []error, healthy bool) {
	for i, p := range probes {
		v := 1.0
		if errs[i] != nil {
			v = 0
		}
		m.probeUp.WithLabelValues(p.Name).Set(v)
	}
	if healthy {
		m.healthy.Set(1)
	} else {
		m.healthy.Set(0)
	}
}

// Collectors returns the Monitor's metrics for the appliance's registry.
func (m *Monitor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.met.probeUp, m.met.healthy}
}

// Names lists the probes' names, for logs.
func (m *Monitor) Names() string {
	names := make([]string, len(m.probes))
	for i, p := range m.probes {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

// Settings converts edged.yaml's health section.
func Settings(h config.Health) Config {
	return Config{Interval: h.Interval, Timeout: h.Timeout, FailAfter: h.FailAfter, RecoverAfter: h.RecoverAfter}
}
