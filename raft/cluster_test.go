package raft

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

var raftLog = flag.Bool("raft.log", false, "write raft debug logs of cluster tests to stderr")

// refPool is the reference cluster's MetalLB pool, 10.4.11.0 - 10.4.15.254.
func refPool() []lbpool.Pool {
	return []lbpool.Pool{{Name: "default", AutoAssign: true, Ranges: []lbpool.Range{{
		First: netip.MustParseAddr("10.4.11.0"), Last: netip.MustParseAddr("10.4.15.254")}}}}
}

// testCluster runs n Stores in this process over real TCP on loopback,
// mutual TLS, each host reaching the others through a partitioning proxy.
type testCluster struct {
	t     testing.TB
	ca    *testCA
	ids   []string
	mu    sync.Mutex
	nodes map[string]*testNode
	proxy *netProxy
	rec   *leaseRecorder
}

type testNode struct {
	cfg   Config
	store *Store // nil while down
}

func testLogger() *slog.Logger {
	if *raftLog {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestCluster(t testing.TB, n int, mod func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, ca: mustCA(t, "edged-test"), nodes: map[string]*testNode{},
		proxy: newNetProxy(t), rec: newLeaseRecorder()}
	var peers []Peer
	for i, addr := range freeport.Addrs(t, n) {
		id := fmt.Sprintf("h%d", i+1)
		c.ids = append(c.ids, id)
		peers = append(peers, Peer{ID: id, Address: addr})
	}
	for _, p := range peers {
		cfg := Config{NodeID: p.ID, BindAddr: p.Address, DataDir: t.TempDir(), Peers: peers,
			TLS: c.ca.node(t, p.ID), Logger: testLogger(), LeaseObserver: c.rec,
			DialContext: c.proxy.dialer(p.ID), SnapshotInterval: time.Second, SnapshotThreshold: 64}
		if mod != nil {
			mod(&cfg)
		}
		c.proxy.addTarget(p.ID, p.Address)
		c.nodes[p.ID] = &testNode{cfg: cfg}
	}
	t.Cleanup(c.shutdown)
	for _, id := range c.ids {
		c.start(id)
	}
	return c
}

func (c *testCluster) start(id string) *Store {
	c.t.Helper()
	s, err := Open(c.nodes[id].cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id].store = s
	c.mu.Unlock()
	return s
}

// crash stops a host as abruptly as a kill -9 can be imitated in process:
// no hand-over, no leave, connections cut. Its recorded leases are NOT
// truncated: a frozen host would keep believing them until they end.
func (c *testCluster) crash(id string) {
	c.mu.Lock()
	s := c.nodes[id].store
	c.nodes[id].store = nil
	c.mu.Unlock()
	if s == nil {
		return
	}
	close(s.stop)
	_ = s.raft.Shutdown().Error()
	s.closeTransport()
	s.wg.Wait()
}

// stop closes a host gracefully.
func (c *testCluster) stop(id string, timeout time.Duration) error {
	c.mu.Lock()
	s := c.nodes[id].store
	c.nodes[id].store = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Close(ctx)
}

func (c *testCluster) shutdown() {
	for _, id := range c.ids {
		c.crash(id)
	}
}

func (c *testCluster) store(id string) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].store
}

func (c *testCluster) up() []string {
	var out []string
	for _, id := range c.ids {
		if c.store(id) != nil {
			out = append(out, id)
		}
	}
	return out
}

// leader waits for a running host that leads and has applied everything
// committed before its election.
func (c *testCluster) leader(timeout time.Duration) (string, *Store) {
	c.t.Helper()
	var id string
	var s *Store
	wait.ForBool(c.t, timeout, "a ready leader", func() bool {
		for _, h := range c.up() {
			if st := c.store(h); st != nil && st.IsLeader() && st.ldr.Load() != nil {
				id, s = h, st
				return true
			}
		}
		return false
	})
	return id, s
}

// allocate commits an allocation through whichever host leads.
func (c *testCluster) allocate(key string) lbpool.Allocation {
	c.t.Helper()
	var got lbpool.Allocation
	wait.ForBool(c.t, 10*time.Second, "allocate "+key, func() bool {
		_, s := c.leader(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a, err := s.Allocate(ctx, lbpool.Request{Key: key})
		if errors.Is(err, ErrNotLeader) {
			return false
		}
		if err != nil {
			c.t.Fatalf("allocate %s: %v", key, err)
		}
		got = a
		return true
	})
	return got
}

func (c *testCluster) setPools(pools []lbpool.Pool, elig map[string][]string) {
	c.t.Helper()
	wait.ForBool(c.t, 10*time.Second, "set pools", func() bool {
		_, s := c.leader(5 * time.Second)
		return s.SetPools(context.Background(), pools, elig) == nil
	})
}

// owners maps each assigned IP to its owner in s's state.
func owners(s *Store) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, a := range s.State().Assignments {
		out[a.IP] = a.Owner
	}
	return out
}

// converged waits until every running host has the same allocations and
// owners as the leader, every allocated IP is settled and leased by its
// owner, and every running host is healthy.
func (c *testCluster) converged(timeout time.Duration) {
	c.t.Helper()
	wait.ForBool(c.t, timeout, "hosts to converge and leases to be held", func() bool {
		_, ls := c.leader(timeout)
		want := ls.State()
		for _, h := range c.up() {
			s := c.store(h)
			if s == nil {
				return false
			}
			v := s.State()
			if fmt.Sprint(v.Allocations) != fmt.Sprint(want.Allocations) ||
				fmt.Sprint(v.Assignments) != fmt.Sprint(want.Assignments) {
				return false
			}
		}
		healthy := map[string]bool{}
		for _, h := range want.Hosts {
			healthy[h.ID] = h.Healthy && !h.Draining
		}
		for _, h := range c.up() {
			if !healthy[h] {
				return false
			}
		}
		now := time.Now()
		for _, a := range want.Assignments {
			s := c.store(a.Owner)
			if a.Owner == "" || !a.Settled || s == nil || !holds(s.Leases(now), a.IP) {
				return false
			}
		}
		return true
	})
}

func holds(ls []Lease, ip netip.Addr) bool {
	for _, l := range ls {
		if l.IP == ip {
			return true
		}
	}
	return false
}

func (c *testCluster) checkNoOverlap() {
	c.t.Helper()
	if o := c.rec.overlaps(); len(o) > 0 {
		c.t.Fatalf("two hosts held a lease for one IP at once:\n%v", o)
	}
}

func sortStrings(s []string) { sort.Strings(s) }
