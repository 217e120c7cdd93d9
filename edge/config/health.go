package config

import "time"

// Health gates this host's announcements on its own ability to serve (see
// edge/health and docs/operate.md): while a probe fails, the host asks
// raft to move its IPs to other hosts.
type Health struct {
	// HAProxy probes HAProxy's stats socket (haproxy.statsSocket) with
	// `show info`: a dead or hung worker, or a dead master-worker pair,
	// fails it. Turn it off only on a host whose HAProxy edged does not
	// manage.
	HAProxy bool `yaml:"haproxy"`
	// Carrier fails while every interface this host announces on has lost
	// carrier (or is down).
	Carrier bool `yaml:"carrier"`
	// Interval between probe rounds.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe; a probe that outlasts it failed.
	Timeout time.Duration `yaml:"timeout"`
	// FailAfter consecutive failed rounds mark the host unhealthy.
	FailAfter int `yaml:"failAfter"`
	// RecoverAfter is how long every probe must pass before an unhealthy
	// host announces again.
	RecoverAfter time.Duration `yaml:"recoverAfter"`
}

// Health defaults: a dead HAProxy is noticed within FailAfter x Interval
// (400 ms; one that refuses connections at the first failed round), and a
// host must be well for 10 s before it takes IPs back.
const (
	DefaultHealthInterval     = 200 * time.Millisecond
	DefaultHealthTimeout      = time.Second
	DefaultHealthFailAfter    = 2
	DefaultHealthRecoverAfter = 10 * time.Second
)

// checkHealth refuses health timings that cannot work.
func (l *loaded) checkHealth() error {
	h := l.cfg.Health
	at := func(f string) (string, []any) { return "health." + f, []any{"health", f} }
	switch {
	case h.Interval < 10*time.Millisecond || h.Interval > time.Minute:
		f, p := at("interval")
		return l.failRoot(f, p, "%v: want 10ms to 1m", h.Interval)
	case h.Timeout <= 0 || h.Timeout > time.Minute:
		f, p := at("timeout")
		return l.failRoot(f, p, "%v: want more than 0 and at most 1m", h.Timeout)
	case h.FailAfter < 1 || h.FailAfter > 1000:
		f, p := at("failAfter")
		return l.failRoot(f, p, "%d: want 1 to 1000 consecutive failed rounds", h.FailAfter)
	case h.RecoverAfter < 0 || h.RecoverAfter > time.Hour:
		f, p := at("recoverAfter")
		return l.failRoot(f, p, "%v: want 0 to 1h", h.RecoverAfter)
	}
	return nil
}
