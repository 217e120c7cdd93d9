package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
)

// maxCertDirLen bounds haproxy.certDir. Every PEM path edged writes into
// HAProxy's file is certDir plus a file name derived from a Secret's
// namespace and name, and the renderer accepts at most 255 bytes per
// value; half of that is ample for a directory and leaves the rest to the
// file name.
const maxCertDirLen = 128

// safeCharset names haproxy.SafeValue's characters in error messages.
const safeCharset = "A-Z a-z 0-9 _ . / : @ % + = ~ , -"

// checkHAProxy refuses the haproxy settings every render would refuse, so
// `edged validate` fails where `edged run` would, instead of the daemon
// starting with a config HAProxy never gets.
func (l *loaded) checkHAProxy() error {
	h := l.cfg.HAProxy
	switch h.BackendMode {
	case lbconfig.BackendEndpoints, lbconfig.BackendNodePort:
	case "nodePort": // the older spelling
		l.cfg.HAProxy.BackendMode = lbconfig.BackendNodePort
	default:
		return l.failRoot("haproxy.backendMode", []any{"haproxy", "backendMode"}, "%q: want %s or %s (the annotation's values)",
			h.BackendMode, lbconfig.BackendEndpoints, lbconfig.BackendNodePort)
	}
	if s := h.ServerSlots; s < 1 || s > 4096 {
		return l.failRoot("haproxy.serverSlots", []any{"haproxy", "serverSlots"}, "%d: want 1 to 4096", s)
	}
	if d := h.CertDir; len(d) > maxCertDirLen || !filepath.IsAbs(d) || !haproxy.SafeValue(d) {
		return l.failRoot("haproxy.certDir", []any{"haproxy", "certDir"},
			"%q: want an absolute path of at most %d bytes of %s (default %s)", d, maxCertDirLen, safeCharset, DefaultCertDir)
	}
	if err := l.checkStats(h.Stats); err != nil {
		return err
	}
	if err := l.checkTimeouts(h.Timeouts); err != nil {
		return err
	}
	if b := h.Prometheus.Bind; b != "" && !listenAddr(b) {
		return l.failRoot("haproxy.prometheus.bind", []any{"haproxy", "prometheus", "bind"},
			"%q is not ip:port (e.g. 127.0.0.1:8405, or the stats bind to share its frontend); leave it empty to turn the exporter off", b)
	}
	return nil
}

// checkTimeouts refuses timeouts outside the renderer's bounds. Zero
// means haproxy.DefaultTimeouts' value, as in the renderer (a Config built
// in code may leave the block out).
func (l *loaded) checkTimeouts(t Timeouts) error {
	idle := fmt.Sprintf("want a duration from %v to %v", haproxy.MinIdleTimeout, haproxy.MaxIdleTimeout)
	for _, c := range []struct {
		key string
		d   time.Duration
		ok  bool
		def time.Duration
	}{
		{"connect", t.Connect, haproxy.ValidConnectTimeout(t.Connect), haproxy.DefaultTimeouts.Connect},
		{"client", t.Client, haproxy.ValidIdleTimeout(t.Client), haproxy.DefaultTimeouts.Client},
		{"server", t.Server, haproxy.ValidIdleTimeout(t.Server), haproxy.DefaultTimeouts.Server},
		{"tunnel", t.Tunnel, haproxy.ValidIdleTimeout(t.Tunnel), haproxy.DefaultTimeouts.Tunnel},
	} {
		if c.ok {
			continue
		}
		want := idle
		if c.key == "connect" {
			want = fmt.Sprintf("want a duration from %v to %v", haproxy.MinConnectTimeout, haproxy.MaxConnectTimeout)
		}
		return l.failRoot("haproxy.timeouts."+c.key, []any{"haproxy", "timeouts", c.key}, "%v: %s (default %v)", c.d, want, c.def)
	}
	return nil
}

// Timeouts returns the timeouts for the HAProxy model.
func (t Timeouts) Timeouts() haproxy.Timeouts {
	return haproxy.Timeouts{Connect: t.Connect, Client: t.Client, Server: t.Server, Tunnel: t.Tunnel}
}

// listenAddr reports whether s is an ip:port HAProxy can be told to bind.
func listenAddr(s string) bool {
	ap, err := netip.ParseAddrPort(s)
	return err == nil && ap.Port() != 0 && ap.Addr().Zone() == "" && !ap.Addr().Is4In6()
}

// checkStats checks the stats page settings the way the renderer does.
func (l *loaded) checkStats(s Stats) error {
	fail := func(key, format string, args ...any) error {
		return l.failRoot("haproxy.stats."+key, []any{"haproxy", "stats", key}, format, args...)
	}
	if s.Bind != "" {
		if !listenAddr(s.Bind) {
			return fail("bind", "%q is not ip:port (e.g. 127.0.0.1:8404, 0.0.0.0:8404 or [fd00::1]:8404); leave it empty to turn the stats page off", s.Bind)
		}
	}
	if !haproxy.SafeValue(s.URI) || !strings.HasPrefix(s.URI, "/") {
		return fail("uri", "%q: want a path starting with / of at most 255 bytes of %s (default %s)", s.URI, safeCharset, DefaultStatsURI)
	}
	for _, kv := range [][2]string{{"user", s.User}, {"password", s.Password}} {
		if kv[1] != "" && !haproxy.SafeValue(kv[1]) {
			// The value is not echoed: it may be a password.
			return fail(kv[0], "want at most 255 bytes of %s; no spaces, quotes or #", safeCharset)
		}
	}
	switch {
	case s.User != "" && s.Password == "":
		return fail("user", "set password too, or neither: HAProxy serves the stats page without authentication unless both are set")
	case s.User == "" && s.Password != "":
		return fail("password", "set user too, or neither: HAProxy serves the stats page without authentication unless both are set")
	}
	return nil
}
