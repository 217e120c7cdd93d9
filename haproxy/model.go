// Package haproxy owns edged's HAProxy configuration file and the running
// HAProxy's runtime state. It turns a desired Model (plain data) into a
// deterministic config file rendered with client-native's config parser,
// validates it with `haproxy -c` next to the operator's own file, writes it
// atomically, reloads through the master socket and confirms with `show proc`.
// Endpoint changes go into pre-allocated server slots through the runtime API
// without a reload. It guarantees that a render that fails validation or a
// reload that fails is never left serving: the previous config keeps running
// and the error is reported to the caller.
package haproxy

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Mode is a proxy mode: "tcp" (the default) or "http".
type Mode string

// The supported proxy modes.
const (
	ModeTCP  Mode = "tcp"
	ModeHTTP Mode = "http"
)

// CheckKind says how HAProxy health-checks a backend's servers.
type CheckKind string

// The supported health check kinds.
const (
	CheckNone CheckKind = "none"
	CheckTCP  CheckKind = "tcp"
	CheckHTTP CheckKind = "http"
)

// Model is the complete desired content of edged's HAProxy file plus the
// runtime state of its servers.
type Model struct {
	// Frontends lists one frontend per VIP:port.
	Frontends []Frontend
	// Backends lists one backend per Service port.
	Backends []Backend
	// Stats, when set, adds a stats page and Prometheus exporter frontend.
	Stats *Stats
	// Timeouts are the defaults of every section; a zero field means
	// DefaultTimeouts' value.
	Timeouts Timeouts
}

// Frontend is a listener on one VIP:port that forwards to one backend.
type Frontend struct {
	// Name is the section name (unique, HAProxy identifier charset, at
	// most MaxNameLen bytes).
	Name string
	// Owner identifies who the section belongs to (a Service key); it is
	// never rendered, and failures HAProxy reports about the section come
	// back under it in Result.Refused.
	Owner string
	// Bind is the VIP and port to listen on.
	Bind netip.AddrPort
	// Mode is tcp or http; empty means tcp.
	Mode Mode
	// Backend names the default backend.
	Backend string
	// CertFile, when set, terminates TLS on the bind with this PEM file.
	CertFile string
	// SourceRanges, when not empty, admit only clients whose address is in
	// one of them (a Service's loadBalancerSourceRanges): any other
	// connection is closed before a byte is read or a backend chosen. A
	// client of a family no range has is refused too. At most
	// MaxSourceRanges masked prefixes.
	SourceRanges []netip.Prefix
	// AcceptProxy makes the bind require a PROXY protocol header (v1 or
	// v2) from every connection and take the client address from it:
	// SourceRanges, affinity and X-Forwarded-For then see that address.
	// HAProxy trusts whoever sends the header.
	AcceptProxy bool
	// ClientTimeout is the client-side inactivity timeout; zero means
	// Model.Timeouts.Client.
	ClientTimeout time.Duration
}

// Backend is a pool of server slots for one Service port.
type Backend struct {
	// Name is the section name (unique, HAProxy identifier charset, at
	// most MaxNameLen bytes).
	Name string
	// Owner is as in Frontend.
	Owner string
	// Mode is tcp or http; empty means tcp.
	Mode Mode
	// Balance is the algorithm (roundrobin, leastconn, source, first,
	// random); empty means roundrobin.
	Balance string
	// Check is the health check applied to every server.
	Check Check
	// ProxyV2 sends a PROXY protocol v2 header to the servers.
	ProxyV2 bool
	// ConnectTimeout and ServerTimeout bound connecting to a server and
	// server-side inactivity; zero means Model.Timeouts' value.
	ConnectTimeout, ServerTimeout time.Duration
	// TunnelTimeout is the inactivity timeout of upgraded HTTP connections
	// (WebSocket, CONNECT), http mode only; zero means Model.Timeouts.Tunnel.
	// TCP mode has none: there HAProxy's tunnel timeout would replace the
	// client and server timeouts once a connection is established.
	TunnelTimeout time.Duration
	// Affinity, when non-zero, sends a client (by source address) back to
	// the server slot it used last, as long as it comes back within
	// Affinity (sessionAffinity: ClientIP). A slot in maintenance (its
	// endpoint left the EndpointSlice) or down (failed checks) is not used:
	// the client is balanced anew and sticks to its new server. A draining
	// slot (terminating but serving) keeps its clients until its endpoint
	// leaves, as HAProxy's drain does for persistent clients.
	Affinity time.Duration
	// Slots is the number of server slots rendered; it is raised to fit
	// Servers. Spare slots let endpoints come and go without a reload.
	Slots int
	// Servers are the live endpoints, at most MaxServers. They are
	// runtime state: changing them never needs a reload while they fit
	// into Slots.
	Servers []Server
}

// Check describes a backend's health check.
type Check struct {
	// Kind is none, tcp or http; empty means tcp.
	Kind CheckKind
	// Path is the HTTP check path (http only), default "/".
	Path string
	// Host is the HTTP check Host header (http only), optional.
	Host string
	// Port, when non-zero, checks this port instead of the traffic port.
	Port uint16
	// Interval between checks; zero means HAProxy's default (2s).
	Interval time.Duration
	// Rise is how many successes mark a server up; zero means 2.
	Rise int
	// Fall is how many failures mark a server down; zero means 3.
	Fall int
}

// Server is one endpoint in a backend.
type Server struct {
	// Addr is the endpoint's address and port.
	Addr netip.AddrPort
	// Drain keeps existing connections but sends no new ones (a
	// terminating endpoint).
	Drain bool
}

// Stats configures the stats page and the Prometheus exporter; at least
// one of Bind and Prometheus is set.
type Stats struct {
	// Bind is the address:port of the stats page; zero: no stats page.
	Bind netip.AddrPort
	// URI is the stats page path, e.g. "/stats".
	URI string
	// User and Password protect the stats page when both are set.
	User, Password string
	// Refresh is the page's auto-refresh interval; zero disables it.
	Refresh time.Duration
	// Prometheus, when valid, serves HAProxy's exporter on /metrics at this
	// address: on the stats frontend when it is Bind, else on a frontend of
	// its own. User and Password protect it too.
	Prometheus netip.AddrPort
}

// MaxServers bounds the servers of one backend. Every server is a slot in
// the rendered file and in every reload; 1,024 is ten times the largest
// Deployment a homelab edge serves and keeps one backend's share of a
// render under a megabyte (two EndpointSlices of 1,000 endpoints x 100
// addresses once asked for 200,000 servers and 193 MB per render).
const MaxServers = 1024

// MaxSourceRanges bounds a frontend's SourceRanges. Every range is
// rendered into every frontend of the Service (each VIP and port); 256 is
// far beyond a homelab's allow-lists (Cloudflare publishes 22 ranges) and
// keeps one frontend's lines under 12 KB.
const MaxSourceRanges = 256

// MaxAffinity bounds Backend.Affinity: Kubernetes' own bound on
// sessionAffinityConfig.clientIP.timeoutSeconds (86,400 s).
const MaxAffinity = 24 * time.Hour

// MaxNameLen is the longest section name edged renders; callers derive
// longer names to fit (FitName).
const MaxNameLen = 100

// MinSlots is the minimum number of server slots per backend: enough
// for a typical homelab Deployment to scale without a reload.
const MinSlots = 8

// slotsFor returns the rendered slot count: at least MinSlots, at least
// the requested Slots, and enough for the servers rounded up to a multiple of
// MinSlots so growth by one endpoint does not reload every time.
func slotsFor(b Backend) int {
	n := max(b.Slots, MinSlots)
	if len(b.Servers) > n {
		n = (len(b.Servers) + MinSlots - 1) / MinSlots * MinSlots
	}
	return n
}

// normalize returns a copy with sorted sections and servers, so equal
// desired states compare and render equal.
func (m Model) normalize() Model {
	out := Model{Stats: m.Stats, Timeouts: m.Timeouts}
	out.Frontends = slices.Clone(m.Frontends)
	slices.SortFunc(out.Frontends, func(a, b Frontend) int { return strings.Compare(a.Name, b.Name) })
	out.Backends = make([]Backend, len(m.Backends))
	for i, b := range m.Backends {
		if !sortedServers(b.Servers) {
			b.Servers = SortServers(slices.Clone(b.Servers))
		}
		b.Slots = slotsFor(b)
		out.Backends[i] = b
	}
	slices.SortFunc(out.Backends, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SortServers sorts s by address in place and drops repeated addresses
// (the first of each stays): the order Render writes servers in. A model
// whose backends are already in this order is not copied by Apply.
func SortServers(s []Server) []Server {
	slices.SortStableFunc(s, func(x, y Server) int { return x.Addr.Compare(y.Addr) })
	return slices.CompactFunc(s, func(x, y Server) bool { return x.Addr == y.Addr })
}

// sortedServers reports whether s is in SortServers' order.
func sortedServers(s []Server) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1].Addr.Compare(s[i].Addr) >= 0 {
			return false
		}
	}
	return true
}

// structure returns the normalized model n without runtime state: two
// models with equal structure render the same file apart from server
// addresses. n must be normalize's output (Manager.plan's), so it is not
// sorted again.
func (n Model) structure() Model {
	s := Model{Stats: n.Stats, Timeouts: n.Timeouts, Frontends: n.Frontends, Backends: slices.Clone(n.Backends)}
	for i := range s.Backends {
		s.Backends[i].Servers = nil
	}
	return s
}
