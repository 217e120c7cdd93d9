package raft

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/goldentooth/edged/lbpool"
)

var chaosLong = flag.Bool("chaos.long", false, "run the long chaos test (more seeds, hosts and steps)")

// TestChaos drives a cluster through random kills (of any host, and of the
// leader in the middle of the hosts' renewals), restarts, partitions (a
// host from all, a pair, the leader from some hosts only), message delay,
// allocations and releases from fixed seeds, and after every step checks:
// no IP held by two services, no two hosts leasing one IP at once, and no
// committed allocation lost or changed.
func TestChaos(t *testing.T) {
	seeds, hosts, steps := []int64{1, 2}, 3, 50
	if *chaosLong {
		seeds, hosts, steps = []int64{1, 2, 3, 4, 5, 6, 7, 8}, 5, 200
	}
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			runChaos(t, seed, hosts, steps)
		})
	}
}

func runChaos(t *testing.T, seed int64, n, steps int) {
	rng := rand.New(rand.NewSource(seed))
	c := newTestCluster(t, n, nil)
	c.setPools(refPool(), nil)
	committed := map[string]string{} // key -> IPs, known committed
	uncertain := map[string]bool{}   // outcome unknown (timeout, leader change)
	next := 0
	partitioned := false
	for step := 0; step < steps; step++ {
		up := c.up()
		down := len(c.ids) - len(up)
		maxDown := (n - 1) / 2
		var action string
		switch r := rng.Intn(13); {
		case r < 4:
			action = "allocate"
		case r < 5:
			action = "release"
		case r < 6 && down < maxDown && !partitioned:
			action = []string{"crash", "crash", "close"}[rng.Intn(3)]
		case r < 7 && down < maxDown && !partitioned:
			action = "kill-leader"
		case r < 8 && down > 0:
			action = "restart"
		case r < 9 && !partitioned && down == 0:
			action = "partition"
		case r < 10 && !partitioned && down == 0:
			action = "isolate-leader-partly"
		case r < 11 && !partitioned:
			action = "delay"
		case r < 12 && partitioned:
			action = "heal"
		default:
			action = "allocate"
		}
		switch action {
		case "allocate", "release":
			key := fmt.Sprintf("ns/c%03d", next)
			if action == "release" && len(committed) > 0 {
				key = pickKey(rng, committed)
			} else {
				next++
			}
			err := chaosWrite(c, key, action == "release", committed)
			if err != nil {
				uncertain[key] = true
				delete(committed, key)
			}
		case "crash":
			c.crash(up[rng.Intn(len(up))])
		case "kill-leader":
			// At a random point of the hosts' renewal cycle (every quarter
			// lease), so requests are in flight to it.
			lid, _ := c.leader(15 * time.Second)
			time.Sleep(time.Duration(rng.Int63n(int64(DefaultLeaseDuration / 4))))
			c.crash(lid)
			action = "kill leader " + lid
		case "isolate-leader-partly":
			// Cut the leader off from some hosts only (at least one, not
			// all): the others still reach both sides.
			lid, _ := c.leader(15 * time.Second)
			var others []string
			for _, id := range c.ids {
				if id != lid {
					others = append(others, id)
				}
			}
			rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
			cut := others[:1+rng.Intn(len(others)-1)]
			for _, o := range cut {
				c.proxy.partition(lid, o)
			}
			action = fmt.Sprintf("isolate leader %s from %v", lid, cut)
			partitioned = true
		case "delay":
			a := rng.Intn(n)
			b := (a + 1 + rng.Intn(n-1)) % n
			d := time.Duration(10+rng.Intn(140)) * time.Millisecond
			c.proxy.slow(c.ids[a], c.ids[b], d)
			action = fmt.Sprintf("delay %s-%s by %v", c.ids[a], c.ids[b], d)
			partitioned = true // healed (delay cleared) by heal
		case "close":
			if err := c.stop(up[rng.Intn(len(up))], 3*time.Second); err != nil {
				t.Logf("graceful close: %v", err)
			}
		case "restart":
			for _, id := range c.ids {
				if c.store(id) == nil {
					c.start(id)
					break
				}
			}
		case "partition":
			a := rng.Intn(n)
			if rng.Intn(2) == 0 {
				c.proxy.isolate(c.ids[a], c.ids)
				action = "isolate " + c.ids[a]
			} else {
				b := (a + 1 + rng.Intn(n-1)) % n
				c.proxy.partition(c.ids[a], c.ids[b])
				action = "partition " + c.ids[a] + "-" + c.ids[b]
			}
			partitioned = true
		case "heal":
			c.proxy.heal()
			partitioned = false
		}
		t.Logf("step %d: %s (up %v)", step, action, c.up())
		// Dwell: let leases, elections and failovers run for a random
		// while before checking (this is the chaos pace, not a wait for a
		// condition; the checks themselves poll with deadlines).
		time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
		checkChaosInvariants(t, c, committed, uncertain)
	}
	c.proxy.heal()
	for _, id := range c.ids {
		if c.store(id) == nil {
			c.start(id)
		}
	}
	c.converged(20 * time.Second)
	checkChaosInvariants(t, c, committed, uncertain)
}

func pickKey(rng *rand.Rand, m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys[rng.Intn(len(keys))]
}

// chaosWrite allocates or releases through the current leader with a short
// deadline; an error leaves the outcome unknown.
func chaosWrite(c *testCluster, key string, release bool, committed map[string]string) error {
	_, s := c.leader(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if release {
		if err := s.Release(ctx, key); err != nil {
			return err
		}
		delete(committed, key)
		return nil
	}
	a, err := s.Allocate(ctx, lbpool.Request{Key: key})
	if err != nil {
		if !errors.Is(err, ErrNotLeader) {
			c.t.Logf("allocate %s: %v", key, err)
		}
		return err
	}
	committed[key] = fmt.Sprint(a.IPs)
	return nil
}

func checkChaosInvariants(t *testing.T, c *testCluster, committed map[string]string, uncertain map[string]bool) {
	t.Helper()
	c.checkNoOverlap()
	for _, id := range c.up() {
		s := c.store(id)
		if s == nil {
			continue
		}
		seen := map[netip.Addr]string{}
		for _, a := range s.State().Allocations {
			for _, ip := range a.IPs {
				if k, dup := seen[ip]; dup {
					t.Fatalf("%s: %s held by %s and %s", id, ip, k, a.Key)
				}
				seen[ip] = a.Key
			}
		}
	}
	_, ls := c.leader(15 * time.Second)
	got := map[string]string{}
	for _, a := range ls.State().Allocations {
		got[a.Key] = fmt.Sprint(a.IPs)
	}
	for k, ips := range committed {
		if got[k] != ips {
			t.Fatalf("committed allocation %s = %s lost or changed: leader has %q", k, ips, got[k])
		}
	}
}
