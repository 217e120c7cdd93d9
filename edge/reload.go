package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/edge/config"
)

// Reloadable is implemented by a Part, the Announcer or the PoolSource
// that can take a new edged.yaml while running (Appliance.Reload). Reload
// gets the whole validated config and applies what it can; it must not
// block for long, and an error leaves that component's old settings in
// force (the others still take the new file). The Kubernetes part
// implements it for pools and advertisements.
type Reloadable interface {
	Reload(cfg *config.Config) error
}

// reloadMetrics count reloads, with Prometheus's own names for the same
// thing (prometheus_config_last_reload_success_timestamp_seconds).
type reloadMetrics struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	// failed is set while the latest reload of edged.yaml was refused.
	failed *atomic.Bool
}

func newReloadMetrics(reg prometheus.Registerer) reloadMetrics {
	m := reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "edged", Subsystem: "config", Name: "reload_total",
			Help: "Config reloads (SIGHUP), by result: success or failure (the file was refused and the running config stays)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "edged", Subsystem: "config", Name: "last_reload_success_timestamp_seconds",
			Help: "When the config in force was loaded: start-up or the last successful reload (Unix seconds)."}),
		failed: new(atomic.Bool),
	}
	m.total.WithLabelValues("success")
	m.total.WithLabelValues("failure")
	m.lastSuccess.SetToCurrentTime()
	reg.MustRegister(m.total, m.lastSuccess)
	return m
}

// UseLogLevel lets Reload set level from log.level. Leave it unset when
// --log-level pins the level. Call before Run.
func (a *Appliance) UseLogLevel(level *slog.LevelVar) { a.level = level }

// current is the config in force: the last one Reload took, else the one
// the Appliance was made with.
func (a *Appliance) current() *config.Config {
	if c := a.live.Load(); c != nil {
		return c
	}
	return a.cfg
}

// Reload reads the config file again (the Path of the config the
// Appliance was made with) with the same loader and checks as start-up.
// A file that fails them is refused: Reload logs the error (file, line,
// field) and returns it, and everything keeps running on the config in
// force. A good file is applied live where it can be: log.level, the pools
// and l2Advertisements (written to raft by the leader at once, and handed
// to the pool source), and whatever the Reloadable parts take (see
// Reloadable). Settings read only at start (node, raft, metrics.address,
// kubernetes) are not applied; a Warn names those that changed, until a
// restart. Reloads are serialised; Reload is safe to call at any time,
// also before or after Run.
func (a *Appliance) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	path := a.cfg.Path
	cfg, err := config.Load(path)
	if err != nil {
		a.reloads.total.WithLabelValues("failure").Inc()
		a.reloads.failed.Store(true)
		a.log.Error("config reload refused; the running config stays in force", "file", path, "err", err)
		return fmt.Errorf("reload %s: %w", path, err)
	}
	prev := a.current()
	if fields := restartFields(a.cfg, cfg); len(fields) > 0 {
		a.log.Warn("config changed but needs a restart to apply", "fields", strings.Join(fields, ", "))
	}
	a.live.Store(cfg)
	if a.level != nil {
		a.level.Set(cfg.Log.SlogLevel())
	}
	errs := a.reloadParts(cfg, componentsChanged(prev, cfg))
	select { // pushPools writes the new pools at once
	case a.reloaded <- struct{}{}:
	default:
	}
	a.reloads.total.WithLabelValues("success").Inc()
	a.reloads.failed.Store(false)
	a.reloads.lastSuccess.SetToCurrentTime()
	a.log.Info("config reloaded", "file", path, "pools", len(cfg.LBPools))
	return errors.Join(errs...)
}

// reloadParts hands cfg to every Reloadable component, each once. When
// changed (a section the components read changed), it warns about those
// that cannot reload: they keep their start-up settings until a restart.
func (a *Appliance) reloadParts(cfg *config.Config, changed bool) []error {
	type named struct {
		name string
		c    any
	}
	all := []named{{"announcer", a.announcer}, {"pool source", a.pools}}
	for _, p := range a.parts {
		all = append(all, named{p.Name(), p})
	}
	seen := map[any]bool{}
	var errs []error
	var static []string
	for _, n := range all {
		if n.c == nil {
			continue
		}
		if reflect.TypeOf(n.c).Comparable() { // the Kubernetes part is also the pool source
			if seen[n.c] {
				continue
			}
			seen[n.c] = true
		}
		r, ok := n.c.(Reloadable)
		if !ok {
			static = append(static, n.name)
			continue
		}
		if err := r.Reload(cfg); err != nil {
			a.log.Error("config reload: a part kept its old settings", "part", n.name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
		}
	}
	if changed && len(static) > 0 {
		a.log.Warn("config changed in sections these parts read only at start; restart edged to apply", "parts", strings.Join(static, ", "))
	}
	return errs
}

// componentsChanged reports whether a section only the parts read
// (haproxy, announce, health) differs between old and cfg.
func componentsChanged(old, cfg *config.Config) bool {
	return !reflect.DeepEqual(old.HAProxy, cfg.HAProxy) || !reflect.DeepEqual(old.Announce, cfg.Announce) ||
		!reflect.DeepEqual(old.Health, cfg.Health)
}

// restartFields names the settings that differ between the running config
// (what edged started with) and cfg but are read only at start: this
// host's identity and state, the raft group, the listeners, the Kubernetes
// client.
func restartFields(running, cfg *config.Config) []string {
	var out []string
	for _, f := range []struct {
		name     string
		old, new any
	}{
		{"node.name", running.Node.Name, cfg.Node.Name},
		{"health.haproxy", running.Health.HAProxy, cfg.Health.HAProxy},
		{"health.carrier", running.Health.Carrier, cfg.Health.Carrier},
		{"node.dataDir", running.Node.DataDir, cfg.Node.DataDir},
		{"node.adminSocket", running.Node.AdminSocket, cfg.Node.AdminSocket},
		{"raft.bindAddress", running.Raft.BindAddress, cfg.Raft.BindAddress},
		{"raft.advertiseAddress", running.Raft.AdvertiseAddress, cfg.Raft.AdvertiseAddress},
		{"raft.peers", running.Raft.Peers, cfg.Raft.Peers},
		{"raft.tls", running.Raft.TLS, cfg.Raft.TLS},
		{"raft.insecurePlaintext", running.Raft.InsecurePlaintext, cfg.Raft.InsecurePlaintext},
		{"raft.heartbeatTimeout", running.Raft.HeartbeatTimeout, cfg.Raft.HeartbeatTimeout},
		{"raft.electionTimeout", running.Raft.ElectionTimeout, cfg.Raft.ElectionTimeout},
		{"raft.leaseDuration", running.Raft.LeaseDuration, cfg.Raft.LeaseDuration},
		{"raft.clockDriftMargin", running.Raft.ClockDriftMargin, cfg.Raft.ClockDriftMargin},
		{"raft.snapshotInterval", running.Raft.SnapshotInterval, cfg.Raft.SnapshotInterval},
		{"raft.snapshotThreshold", running.Raft.SnapshotThreshold, cfg.Raft.SnapshotThreshold},
		{"raft.leaveOnShutdown", running.Raft.LeaveOnShutdown, cfg.Raft.LeaveOnShutdown},
		{"metrics.address", running.Metrics.Address, cfg.Metrics.Address},
		{"metrics.tls", running.Metrics.TLS, cfg.Metrics.TLS},
		{"kubernetes", running.Kubernetes, cfg.Kubernetes},
	} {
		if !reflect.DeepEqual(f.old, f.new) {
			out = append(out, f.name)
		}
	}
	return out
}
