package announce

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the gratuitous announcements; config.Announce uses the same
// values (edge/config/defaults.go).
const (
	// DefaultGARPCount is the length of the burst sent on takeover: a single
	// lost frame must not leave a client on the old MAC, and three frames
	// are what keepalived and MetalLB settle on as well.
	DefaultGARPCount = 3
	// DefaultGARPInterval spaces the burst; the first frame goes out at once,
	// so it only bounds how long a lost first frame costs.
	DefaultGARPInterval = 100 * time.Millisecond
	// DefaultRefreshInterval re-announces every held IP so a cache that missed
	// the burst is repaired without waiting for its own neighbour
	// unreachability detection (Linux: base_reachable_time 30 s, then
	// DELAY 5 s and 3 probes). Every held IP costs one frame per interval.
	DefaultRefreshInterval = 30 * time.Second
)

// linkPoll is how often the announce loop looks at the link when nothing
// else wakes it: a fallback for link changes the netlink subscription missed
// (its socket can overflow), so a link that comes back always gets a burst.
const linkPoll = time.Second

// Option tunes an Responder.
type Option func(*options)

type options struct {
	count    int
	interval time.Duration
	refresh  time.Duration
	log      *slog.Logger
}

// WithGratuitous sets the takeover burst: count frames, interval apart.
// A count below 1 disables the burst.
func WithGratuitous(count int, interval time.Duration) Option {
	return func(o *options) { o.count, o.interval = count, interval }
}

// WithRefresh sets the periodic re-announcement interval; 0 disables it.
func WithRefresh(d time.Duration) Option { return func(o *options) { o.refresh = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Responder holds the leases of this host and announces them on every
// interface it serves (see Serve).
type Responder struct {
	opts options

	// mu guards the leases; senders hold it for reading across the write,
	// so once SetLeases or Stop returns nothing more goes out for an IP
	// they withdrew.
	mu      sync.RWMutex
	leases  map[netip.Addr]held        // replaced, never changed in place: snapshot readers keep it
	shared  *atomic.Pointer[time.Time] // the leases' common end, nil if they differ
	stopped bool
	ports   map[*port]struct{}
}

// NewResponder returns an Responder with no leases.
func NewResponder(opts ...Option) *Responder {
	o := options{count: DefaultGARPCount, interval: DefaultGARPInterval, refresh: DefaultRefreshInterval, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return &Responder{opts: o, leases: map[netip.Addr]held{}, ports: map[*port]struct{}{}}
}

// SetLeases replaces the set of leases; IPs missing from ls stop being
// answered at once. An IP that was not held a moment ago (new, or its lease
// had lapsed, as after a partition heals) is a takeover: every interface
// sends a gratuitous burst for it.
func (a *Responder) SetLeases(ls []Lease) {
	now := time.Now()
	var shared *atomic.Pointer[time.Time]
	if len(ls) > 0 && !slices.ContainsFunc(ls, func(l Lease) bool { return !l.Until.Equal(ls[0].Until) }) {
		shared = new(atomic.Pointer[time.Time])
		end := ls[0].Until
		shared.Store(&end)
	}
	m := make(map[netip.Addr]held, len(ls))
	for _, l := range ls {
		m[l.IP.Unmap()] = held{until: l.Until, shared: shared, ifaces: l.Interfaces}
	}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	taken, changed := takeovers(a.leases, m, now)
	a.leases, a.shared = m, shared
	ports := a.portsLocked()
	a.mu.Unlock()
	countTakeovers(len(taken))
	if changed || len(taken) > 0 {
		for _, p := range ports {
			p.takeover(taken, now)
		}
	}
}

// Renew moves the end of every held lease to until: SetLeases with the same
// IPs and interfaces and a later end. It runs on every renewal (20 times a
// second with default timings), so when the leases share one end, as
// SetLeases' callers give them, it only swaps that end. An IP whose lease
// had lapsed gets a takeover burst, as with SetLeases.
func (a *Responder) Renew(until time.Time) {
	now := time.Now()
	var taken []netip.Addr
	a.mu.Lock()
	if a.stopped || len(a.leases) == 0 {
		a.mu.Unlock()
		return
	}
	if a.shared != nil {
		if now.Before(until) && !now.Before(*a.shared.Load()) {
			for ip := range a.leases {
				taken = append(taken, ip)
			}
		}
		a.shared.Store(&until)
	} else {
		// Different ends: build a new table with one shared end (readers
		// use the old map without the lock, so it is never changed).
		shared := new(atomic.Pointer[time.Time])
		shared.Store(&until)
		m := make(map[netip.Addr]held, len(a.leases))
		for ip, h := range a.leases {
			if now.Before(until) && !now.Before(h.end()) {
				taken = append(taken, ip)
			}
			h.shared = shared
			m[ip] = h
		}
		a.leases, a.shared = m, shared
	}
	var ports []*port
	if len(taken) > 0 {
		ports = a.portsLocked()
	}
	a.mu.Unlock()
	countTakeovers(len(taken))
	slices.SortFunc(taken, netip.Addr.Compare)
	for _, p := range ports {
		p.takeover(taken, now)
	}
}

// takeovers returns the IPs held under next at now that were not held under
// prev at now (new, or lapsed: a partition that healed), and whether the set
// of IPs changed at all (which re-syncs multicast groups).
func takeovers(prev, next map[netip.Addr]held, now time.Time) (taken []netip.Addr, changed bool) {
	changed = len(prev) != len(next)
	for ip, h := range next {
		old, had := prev[ip]
		if now.Before(h.end()) && (!had || !now.Before(old.end())) {
			taken = append(taken, ip)
		}
		changed = changed || !had
	}
	slices.SortFunc(taken, netip.Addr.Compare)
	return taken, changed
}

// Stop makes the Responder refuse every further frame and send nothing more.
func (a *Responder) Stop() {
	a.mu.Lock()
	a.stopped = true
	a.leases, a.shared = map[netip.Addr]held{}, nil
	ports := a.portsLocked()
	a.mu.Unlock()
	for _, p := range ports {
		p.takeover(nil, time.Now())
	}
}

func (a *Responder) portsLocked() []*port {
	out := make([]*port, 0, len(a.ports))
	for p := range a.ports {
		out = append(out, p)
	}
	return out
}

// whileHeld runs send, with the leases locked for reading, only if ip is
// held at this moment and may be announced on ifname. It reports whether
// send ran.
func (a *Responder) whileHeld(ip netip.Addr, ifname string, send func() error) (bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	h, ok := a.leases[ip.Unmap()]
	if a.stopped || !ok || !time.Now().Before(h.end()) || !h.advertisedOn(ifname) {
		return false, nil
	}
	return true, send()
}

// heldOn returns the IPs held at now that may be announced on ifname.
func (a *Responder) heldOn(ifname string, now time.Time) []netip.Addr {
	return a.heldWhere(ifname, now, func(netip.Addr) bool { return true })
}

// heldWhere is heldOn for the IPs keep accepts (the multicast group sync
// runs every second and wants only IPv6).
func (a *Responder) heldWhere(ifname string, now time.Time, keep func(netip.Addr) bool) []netip.Addr {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []netip.Addr
	for ip, h := range a.leases {
		if keep(ip) && !a.stopped && now.Before(h.end()) && h.advertisedOn(ifname) {
			out = append(out, ip)
		}
	}
	return out
}

// snapshot returns the current leases for one decision.
func (a *Responder) snapshot() (map[netip.Addr]held, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.leases, a.stopped
}
