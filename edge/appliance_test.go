package edge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/wait"
)

// referencePoolSize is the address count of MetalLB's reference pool
// 10.4.11.0 - 10.4.15.254 (DESIGN.md).
const referencePoolSize = 1279

// allocated is how many Services the test allocates through the leader.
const allocated = 9

func quietLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// stop cancels h and waits for Run to return.
func stop(t *testing.T, h *host) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: Run did not return within 30s of cancel", h.name)
		return nil
	}
}

// TestApplianceLifecycle runs three edged appliances over real raft on
// loopback: readiness, status, metrics, then a graceful shutdown of an
// announcing host.
func TestApplianceLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-host raft cluster")
	}
	ns := listenNotify(t)
	hosts := startCluster(t)

	// Readiness: READY=1 only once raft has a leader.
	wait.ForBool(t, 20*time.Second, "READY=1 on NOTIFY_SOCKET", func() bool {
		_, ok := ns.find("READY=1")
		return ok
	})
	ready, _ := ns.find("READY=1")
	if !strings.Contains(ready.text, "STATUS=raft leader edge") {
		t.Errorf("READY message %q does not name a raft leader", ready.text)
	}
	led := false
	for _, h := range hosts {
		if s := h.app.Store(); s != nil {
			if id, _ := s.Leader(); id != "" {
				led = true
			}
		}
	}
	if !led {
		t.Errorf("READY=1 arrived but no host knows a raft leader")
	}
	if _, ok := ns.find("STOPPING=1"); ok {
		t.Errorf("STOPPING=1 before any shutdown")
	}
	ldr := leader(t, hosts)

	// Status: every host sees three healthy members, the leader and the pool.
	for _, h := range hosts {
		wait.ForBool(t, 15*time.Second, h.name+" admin status: 3 healthy members and pool primary", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := admin.Fetch(ctx, h.admin)
			if err != nil {
				return false
			}
			healthy := 0
			for _, m := range st.Members {
				if m.Healthy {
					healthy++
				}
			}
			return healthy == 3 && st.Leader == ldr.name && len(st.Pools) == 1 &&
				st.Pools[0].Name == "primary" && st.Pools[0].TotalV4 == referencePoolSize
		})
	}

	// Allocate through the leader's store.
	store := ldr.app.Store()
	var ips []netip.Addr
	for i := range allocated {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		al, err := store.Allocate(ctx, lbpool.Request{Key: fmt.Sprintf("default/svc-%d", i), Namespace: "default"})
		cancel()
		if err != nil {
			t.Fatalf("Allocate svc-%d: %v", i, err)
		}
		ips = append(ips, al.IPs...)
	}

	// Metrics on every host follow the replicated state.
	want := fmt.Sprintf(`# HELP metallb_allocator_addresses_in_use_total Number of IP addresses in use, per pool.
# TYPE metallb_allocator_addresses_in_use_total gauge
metallb_allocator_addresses_in_use_total{pool="primary"} %d
# HELP metallb_allocator_addresses_total Number of usable IP addresses, per pool.
# TYPE metallb_allocator_addresses_total gauge
metallb_allocator_addresses_total{pool="primary"} %d
`, allocated, referencePoolSize)
	for _, h := range hosts {
		var last error
		wait.ForBool(t, 10*time.Second, h.name+" metrics", func() bool {
			last = testutil.GatherAndCompare(h.app.Registry(), strings.NewReader(want),
				"metallb_allocator_addresses_total", "metallb_allocator_addresses_in_use_total")
			return last == nil
		})
	}

	// Every IP gets an owner, and the owner's announcer holds a lease for it.
	byHost := map[string]*host{}
	for _, h := range hosts {
		byHost[h.name] = h
	}
	owners := map[netip.Addr]string{}
	wait.ForBool(t, 10*time.Second, "every allocated IP announced by its owner", func() bool {
		v := store.State()
		clear(owners)
		for _, a := range v.Assignments {
			owners[a.IP] = a.Owner
		}
		now := time.Now()
		for _, ip := range ips {
			h := byHost[owners[ip]]
			if h == nil || !h.ann.announcing(ip, now) {
				return false
			}
		}
		return true
	})

	// Graceful shutdown of an owner that is not the leader.
	var victim *host
	for _, ip := range ips {
		if o := owners[ip]; o != ldr.name {
			victim = byHost[o]
			break
		}
	}
	if victim == nil {
		t.Fatalf("the leader %s owns every IP; want them spread: %v", ldr.name, owners)
	}
	var moved []netip.Addr
	for _, ip := range ips {
		if owners[ip] == victim.name {
			moved = append(moved, ip)
		}
	}
	if err := stop(t, victim); err != nil {
		t.Errorf("%s: Run: %v", victim.name, err)
	}
	if _, ok := ns.find("STOPPING=1"); !ok {
		t.Errorf("no STOPPING=1 after %s shut down", victim.name)
	}
	if victim.ann.announcing(moved[0], time.Now()) {
		t.Errorf("%s still announces %v after shutdown", victim.name, moved[0])
	}
	wait.ForBool(t, 10*time.Second, fmt.Sprintf("%v moved off %s and announced elsewhere", moved, victim.name), func() bool {
		v := store.State()
		now := time.Now()
		for _, a := range v.Assignments {
			for _, ip := range moved {
				if a.IP != ip {
					continue
				}
				h := byHost[a.Owner]
				if h == nil || h == victim || !h.ann.announcing(ip, now) {
					return false
				}
			}
		}
		return true
	})

	// Never two announcers for one IP at the same time.
	all := map[netip.Addr][]segment{}
	for _, h := range hosts {
		for ip, segs := range h.ann.segments() {
			all[ip] = append(all[ip], segs...)
		}
	}
	for ip, segs := range all {
		if err := checkNoOverlap(segs); err != nil {
			t.Errorf("%v: %v", ip, err)
		}
	}
}

// checkNoOverlap reports two hosts' segments that overlap in time.
func checkNoOverlap(segs []segment) error {
	sort.Slice(segs, func(i, j int) bool { return segs[i].start.Before(segs[j].start) })
	for i := range segs {
		for j := i + 1; j < len(segs) && segs[j].start.Before(segs[i].end); j++ {
			if segs[j].host != segs[i].host {
				return fmt.Errorf("%s announces %s..%s while %s announces %s..%s",
					segs[i].host, segs[i].start.Format(time.StampMicro), segs[i].end.Format(time.StampMicro),
					segs[j].host, segs[j].start.Format(time.StampMicro), segs[j].end.Format(time.StampMicro))
			}
		}
	}
	return nil
}

// TestCheckNoOverlap makes sure the overlap check can fail.
func TestCheckNoOverlap(t *testing.T) {
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name string
		segs []segment
		bad  bool
	}{
		{"handover", []segment{{"a", ms(0), ms(10)}, {"b", ms(10), ms(20)}}, false},
		{"same host", []segment{{"a", ms(0), ms(10)}, {"a", ms(5), ms(20)}}, false},
		{"overlap", []segment{{"a", ms(0), ms(10)}, {"b", ms(9), ms(20)}}, true},
		{"nested later", []segment{{"b", ms(30), ms(40)}, {"a", ms(0), ms(50)}}, true},
	}
	for _, tc := range tests {
		if got := checkNoOverlap(tc.segs) != nil; got != tc.bad {
			t.Errorf("%s: overlap=%v, want %v", tc.name, got, tc.bad)
		}
	}
}
