package raft

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/goldentooth/edged/lbpool"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func reportLatency(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.50).Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, name+"-p99-ms")
}

func defaultTimings(cfg *Config) { cfg.SnapshotInterval, cfg.SnapshotThreshold = 0, 0 }

// fastTimings is docs/raft.md's fast profile.
func fastTimings(cfg *Config) {
	defaultTimings(cfg)
	cfg.LeaseDuration, cfg.ClockDriftMargin, cfg.HeartbeatTimeout, cfg.ElectionTimeout = 70*time.Millisecond, 10*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
}

// BenchmarkAllocateCommit3Hosts measures Allocate on the leader of three
// hosts over mutual TLS on loopback, fsync'ed bolt log included.
func BenchmarkAllocateCommit3Hosts(b *testing.B) {
	c := newTestCluster(b, 3, defaultTimings)
	c.setPools(refPool(), nil)
	_, ls := c.leader(10 * time.Second)
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i >= 1000 {
			if err := ls.Release(ctx, fmt.Sprintf("ns/b%07d", i-1000)); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		if _, err := ls.Allocate(ctx, lbpool.Request{Key: fmt.Sprintf("ns/b%07d", i)}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, "commit", lat)
}

// BenchmarkFailover crashes a host that owns IPs (a follower, or the
// leader) and measures from the crash to the moment the last of its IPs is
// leased by another host (from the recorded lease intervals), and how long
// the other hosts' IPs went unleased meanwhile. Each iteration is one
// trial; run with -benchtime=20x. leader-crash crashes a leader that owns
// nothing (drained): only others-dark means anything there.
func BenchmarkFailover(b *testing.B) {
	for _, tc := range []struct {
		name    string
		leader  bool
		timings func(*Config)
	}{{"owner-crash", false, defaultTimings}, {"leader-and-owner-crash", true, defaultTimings},
		{"fast-profile/owner-crash", false, fastTimings}, {"fast-profile/leader-and-owner-crash", true, fastTimings}} {
		leader := tc.leader
		b.Run(tc.name, func(b *testing.B) {
			c := newTestCluster(b, 3, tc.timings)
			c.setPools(refPool(), nil)
			for i := 0; i < 30; i++ {
				c.allocate(fmt.Sprintf("ns/f-%02d", i))
			}
			c.converged(10 * time.Second)
			var lat, others []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c.converged(10 * time.Second)
				lid, ls := c.leader(10 * time.Second)
				victim := lid
				if !leader {
					for _, id := range c.ids {
						if id != lid && len(ls.ownedBy(id)) > 0 {
							victim = id
						}
					}
				}
				ips := ls.ownedBy(victim)
				all := owners(ls)
				b.StartTimer()
				t0 := time.Now()
				c.crash(victim)
				c.waitMoved(victim, ips, 10*time.Second)
				b.StopTimer()
				var last time.Time
				for _, ip := range ips {
					if s := c.rec.firstStartAfter(ip, victim, t0); s.After(last) {
						last = s
					}
				}
				lat = append(lat, last.Sub(t0))
				// How long the IPs of hosts that did NOT crash went unleased.
				var worst time.Duration
				end := time.Now()
				for ip, o := range all {
					if o != victim {
						worst = max(worst, c.rec.darkTime(ip, t0, end))
					}
				}
				others = append(others, worst)
				c.start(victim)
				b.StartTimer()
			}
			b.StopTimer()
			c.checkNoOverlap()
			reportLatency(b, "takeover", lat)
			reportLatency(b, "others-dark", others)
		})
	}
	b.Run("leader-crash", benchLeaderCrash)
}

// benchLeaderCrash crashes a leader that owns nothing and reports how long
// the other hosts' IPs went unleased (the goal: never).
func benchLeaderCrash(b *testing.B) {
	c := newTestCluster(b, 3, defaultTimings)
	c.setPools(refPool(), nil)
	for i := 0; i < 30; i++ {
		c.allocate(fmt.Sprintf("ns/f-%02d", i))
	}
	var others []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		lid, ls := c.leader(10 * time.Second)
		if err := ls.SetAdminDrain(context.Background(), lid, true); err != nil {
			b.Fatal(err)
		}
		c.drainedAway(lid, 10*time.Second)
		all := owners(ls)
		b.StartTimer()
		t0 := time.Now()
		c.crash(lid)
		_, nl := c.leader(10 * time.Second)
		b.StopTimer()
		time.Sleep(time.Until(t0.Add(time.Second))) // observation window: past every old lease
		end := time.Now()
		var worst time.Duration
		for ip := range all {
			worst = max(worst, c.rec.darkTime(ip, t0, end))
		}
		others = append(others, worst)
		c.start(lid)
		if err := nl.SetAdminDrain(context.Background(), lid, false); err != nil {
			b.Fatal(err)
		}
		c.converged(10 * time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	c.checkNoOverlap()
	reportLatency(b, "others-dark", others)
}

// BenchmarkSnapshot measures snapshot size, persist and restore time with
// the reference pool full (1,279 allocations) and with 65,000 allocations.
func BenchmarkSnapshot(b *testing.B) {
	big := []lbpool.Pool{{Name: "big", AutoAssign: true, Ranges: []lbpool.Range{{
		First: netip.MustParseAddr("10.0.0.0"), Last: netip.MustParseAddr("10.0.255.255")}}}}
	for _, tc := range []struct {
		name  string
		pools []lbpool.Pool
		n     int
	}{{"reference-pool-full", refPool(), 1279}, {"65000-allocations", big, 65000}} {
		b.Run(tc.name, func(b *testing.B) {
			f := stateWith(b, tc.pools, tc.n)
			var snap []byte
			var restore time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snap = snapshotBytes(b, f)
				t0 := time.Now()
				g := newFSM(nil)
				if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
					b.Fatal(err)
				}
				restore += time.Since(t0)
			}
			b.StopTimer()
			b.ReportMetric(float64(len(snap)), "snapshot-bytes")
			b.ReportMetric(float64(restore.Microseconds())/1000/float64(b.N), "restore-ms")
		})
	}
}

// stateWith builds a state of n single-IP allocations across 3 hosts,
// straight from allocations (the allocator's own speed is lbpool's concern).
func stateWith(b *testing.B, pools []lbpool.Pool, n int) *fsm {
	b.Helper()
	d := snapshotData{Format: snapshotFormat, Pools: pools}
	ip := pools[0].Ranges[0].First
	for i := 0; i < n; i++ {
		d.Allocations = append(d.Allocations, lbpool.Allocation{Key: fmt.Sprintf("ns/svc-%05d", i), Pool: pools[0].Name, IPs: []netip.Addr{ip}})
		ip = ip.Next()
	}
	f, err := fromSnapshot(d)
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		f.hosts[h] = HostState{ID: h, Healthy: true}
	}
	f.reassignAll(1)
	if len(f.assign) != n {
		b.Fatalf("assigned %d IPs, want %d", len(f.assign), n)
	}
	return f
}
