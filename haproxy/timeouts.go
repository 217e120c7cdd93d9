package haproxy

import (
	"cmp"
	"fmt"
	"strconv"
	"time"
)

// Timeouts are HAProxy's connection timeouts. In TCP mode Client and
// Server are how long an idle connection lives; in http mode they bound
// inactivity within a request and its response, while waiting for a
// request is bounded apart (httpRequestTimeout, httpKeepAliveTimeout) and an
// upgraded connection (WebSocket) lives Tunnel.
type Timeouts struct {
	// Connect bounds establishing a connection to a server.
	Connect time.Duration
	// Client is the client-side inactivity timeout.
	Client time.Duration
	// Server is the server-side inactivity timeout.
	Server time.Duration
	// Tunnel is the inactivity timeout of upgraded HTTP connections.
	Tunnel time.Duration
}

// DefaultTimeouts are edged's defaults (edged.yaml haproxy.timeouts).
// Client, Server and Tunnel are 24h: kube-proxy, which edged replaces for
// LoadBalancer traffic, sets conntrack's established-TCP timeout to 24h
// (its --conntrack-tcp-timeout-established default; the kernel's own is 5
// days), so an idle PostgreSQL, SSH, MQTT or WebSocket connection through a
// VIP lived that long before edged and keeps doing so. Idle connections
// cost HAProxy little (no buffers while idle), and `option tcpka` lets the
// kernel find vanished peers long before 24h. Connect is HAProxy's
// documented recommendation of a few seconds.
var DefaultTimeouts = Timeouts{
	Connect: 5 * time.Second,
	Client:  24 * time.Hour,
	Server:  24 * time.Hour,
	Tunnel:  24 * time.Hour,
}

// Bounds on timeouts, for annotations and edged.yaml alike. An idle timeout
// under a second cuts ordinary request/response pauses; a week is beyond
// any keepalive and well under HAProxy's ceiling (2^31-1 ms, 24.8 days). A
// connect timeout under 100ms fails on a loaded node; over a minute a dead
// endpoint holds clients for nothing.
const (
	MinIdleTimeout    = time.Second
	MaxIdleTimeout    = 7 * 24 * time.Hour
	MinConnectTimeout = 100 * time.Millisecond
	MaxConnectTimeout = time.Minute
)

// HTTP request timeouts (http mode only; not configurable): how long a
// client may take to send a request's headers, and how long an idle
// keep-alive connection waits for the next request. Without them HAProxy
// would use Client (24h) for both. The values are haproxytech's
// kubernetes-ingress defaults.
const (
	httpRequestTimeout   = 5 * time.Second
	httpKeepAliveTimeout = time.Minute
)

// ValidIdleTimeout reports whether d may be a client, server or tunnel
// timeout: zero (the default) or within MinIdleTimeout..MaxIdleTimeout.
func ValidIdleTimeout(d time.Duration) bool {
	return d == 0 || d >= MinIdleTimeout && d <= MaxIdleTimeout
}

// ValidConnectTimeout reports whether d may be a connect timeout: zero
// (the default) or within MinConnectTimeout..MaxConnectTimeout.
func ValidConnectTimeout(d time.Duration) bool {
	return d == 0 || d >= MinConnectTimeout && d <= MaxConnectTimeout
}

// Validate reports a timeout outside the bounds; zero fields are defaults.
func (t Timeouts) Validate() error {
	switch {
	case !ValidConnectTimeout(t.Connect):
		return fmt.Errorf("connect timeout %v: want %v..%v: %w", t.Connect, MinConnectTimeout, MaxConnectTimeout, ErrInvalidModel)
	case !ValidIdleTimeout(t.Client), !ValidIdleTimeout(t.Server), !ValidIdleTimeout(t.Tunnel):
		return fmt.Errorf("client/server/tunnel timeouts %v/%v/%v: want %v..%v: %w", t.Client, t.Server, t.Tunnel, MinIdleTimeout, MaxIdleTimeout, ErrInvalidModel)
	}
	return nil
}

// orDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) orDefaults() Timeouts {
	d := DefaultTimeouts
	return Timeouts{
		Connect: cmp.Or(t.Connect, d.Connect), Client: cmp.Or(t.Client, d.Client),
		Server: cmp.Or(t.Server, d.Server), Tunnel: cmp.Or(t.Tunnel, d.Tunnel),
	}
}

// timeout formats d for HAProxy in the largest unit that holds it exactly
// (24h, 90s, 250ms), so the file reads as the config was written.
func timeout(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
