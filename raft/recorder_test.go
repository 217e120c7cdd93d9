package raft

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// leaseRecorder records every host's lease intervals per IP in real time
// (all hosts live in this process, so they share one clock).
type leaseRecorder struct {
	mu  sync.Mutex
	ivs map[netip.Addr]map[string][]interval
}

type interval struct{ start, end time.Time }

func newLeaseRecorder() *leaseRecorder {
	return &leaseRecorder{ivs: map[netip.Addr]map[string][]interval{}}
}

// LeaseHeld implements LeaseObserver.
func (r *leaseRecorder) LeaseHeld(host string, ip netip.Addr, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.ivs[ip]
	if m == nil {
		m = map[string][]interval{}
		r.ivs[ip] = m
	}
	l := m[host]
	if n := len(l); n > 0 && !start.After(l[n-1].end) {
		if end.After(l[n-1].end) {
			l[n-1].end = end
		}
		return
	}
	m[host] = append(l, interval{start, end})
}

// LeaseDropped implements LeaseObserver.
func (r *leaseRecorder) LeaseDropped(host string, ip netip.Addr, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.ivs[ip][host]
	if n := len(l); n > 0 && at.Before(l[n-1].end) {
		l[n-1].end = at
	}
}

// overlaps returns every pair of lease intervals of different hosts for
// one IP that overlap.
func (r *leaseRecorder) overlaps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for ip, m := range r.ivs {
		type hiv struct {
			host string
			iv   interval
		}
		var all []hiv
		for h, l := range m {
			for _, iv := range l {
				all = append(all, hiv{h, iv})
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].iv.start.Before(all[j].iv.start) })
		for i := range all {
			for j := i + 1; j < len(all) && all[j].iv.start.Before(all[i].iv.end); j++ {
				if all[i].host != all[j].host {
					out = append(out, fmt.Sprintf("%s: %s holds until %s, %s from %s (overlap %s)", ip,
						all[i].host, all[i].iv.end.Format("15:04:05.000"), all[j].host,
						all[j].iv.start.Format("15:04:05.000"), all[i].iv.end.Sub(all[j].iv.start)))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// holders returns which hosts hold ip at time at.
func (r *leaseRecorder) holders(ip netip.Addr, at time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for h, l := range r.ivs[ip] {
		for _, iv := range l {
			if !at.Before(iv.start) && at.Before(iv.end) {
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// firstStartAfter is the earliest start of a lease for ip by a host other
// than not, at or after t; zero if none.
func (r *leaseRecorder) firstStartAfter(ip netip.Addr, not string, t time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best time.Time
	for h, l := range r.ivs[ip] {
		if h == not {
			continue
		}
		for _, iv := range l {
			if !iv.start.Before(t) && (best.IsZero() || iv.start.Before(best)) {
				best = iv.start
			}
		}
	}
	return best
}

// darkTime is how long ip was leased by nobody between from and to.
func (r *leaseRecorder) darkTime(ip netip.Addr, from, to time.Time) time.Duration {
	r.mu.Lock()
	var all []interval
	for _, l := range r.ivs[ip] {
		all = append(all, l...)
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	var dark time.Duration
	cur := from
	for _, iv := range all {
		if !iv.end.After(cur) {
			continue
		}
		if iv.start.After(cur) {
			if iv.start.After(to) {
				break
			}
			dark += iv.start.Sub(cur)
		}
		cur = iv.end
		if !cur.Before(to) {
			return dark
		}
	}
	if cur.Before(to) {
		dark += to.Sub(cur)
	}
	return dark
}
