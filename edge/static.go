package edge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// staticStore is what the static VIPs need of raft.Store.
type staticStore interface {
	Allocate(ctx context.Context, req lbpool.Request) (lbpool.Allocation, error)
	Release(ctx context.Context, key string) error
	FreeEpoch() uint64
	State() raft.View
}

// staticWrite bounds one raft write of the static VIP loop.
const staticWrite = 5 * time.Second

// staticAllocs keeps, on the leader, one allocation per static VIP pool
// the leader wrote (config.StaticVIP, lbpool.StaticPool): the address of
// the pool, under the VIP's key, so raft assigns and fences it as it does
// a Service's; a static allocation whose pool is gone is released. Nothing
// else writes or releases static keys (the Kubernetes controller works on
// Service keys only), so it works with or without Kubernetes. It is used
// by the pushPools goroutine only.
type staticAllocs struct {
	log *slog.Logger
	// synced: the state held exactly last when this host, as leader, last
	// looked; reset when it stops leading.
	synced bool
	last   []lbpool.Request
	// failed holds, per key, the free epoch read before its last failed
	// allocation: a failed Allocate is itself a raft entry, so retrying on
	// every state change would write forever; a retry waits for the epoch
	// to move (an address freed, new pools).
	failed map[string]uint64
	// refused is the last refused pool set's error, logged once.
	refused string
}

// refuse logs, once per distinct error, that the static pools could not
// join the state's pools.
func (s *staticAllocs) refuse(err error) {
	if msg := err.Error(); msg != s.refused {
		s.refused = msg
		s.log.Warn("static VIPs not written: they clash with the pools in the raft state", "err", err)
	}
}

// reset forgets what was synced: this host no longer leads.
func (s *staticAllocs) reset() { s.synced, s.last = false, nil }

// sync makes the static allocations follow pools (the pools in the raft
// state). It returns at once when nothing changed since the last sync.
func (s *staticAllocs) sync(ctx context.Context, store staticStore, pools []lbpool.Pool) {
	want := lbpool.StaticRequests(pools)
	if s.synced && slices.EqualFunc(want, s.last, sameStatic) {
		return
	}
	if s.failed == nil {
		s.failed = map[string]uint64{}
	}
	ok := true
	for _, req := range want {
		epoch := store.FreeEpoch()
		if e, failed := s.failed[req.Key]; failed && e == epoch {
			ok = false
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, staticWrite)
		_, err := store.Allocate(wctx, req)
		cancel()
		if err != nil {
			ok = false
			if !errors.Is(err, raft.ErrNotLeader) {
				s.failed[req.Key] = epoch
				s.log.Warn("static VIP not allocated; retried when an address is freed or the pools change",
					"ip", req.IPs[0], "pool", req.Pool, "err", err)
			}
			continue
		}
		delete(s.failed, req.Key)
	}
	for _, key := range staleStatic(want, store.State().Allocations) {
		wctx, cancel := context.WithTimeout(ctx, staticWrite)
		err := store.Release(wctx, key)
		cancel()
		if err != nil {
			ok = false
			s.log.Warn("static VIP not released", "pool", key, "err", err)
			continue
		}
		s.log.Info("static VIP released: no longer in the config", "pool", key)
	}
	s.synced, s.last = ok, want
}

// staleStatic returns the keys of the static allocations in have that no
// request of want keeps.
func staleStatic(want []lbpool.Request, have []lbpool.Allocation) []string {
	var out []string
	for _, a := range have {
		if lbpool.IsStatic(a.Key) && !slices.ContainsFunc(want, func(r lbpool.Request) bool { return r.Key == a.Key }) {
			out = append(out, a.Key)
		}
	}
	return out
}

// sameStatic reports whether two static requests ask for the same thing.
func sameStatic(a, b lbpool.Request) bool {
	return a.Key == b.Key && a.Pool == b.Pool && slices.Equal(a.IPs, b.IPs)
}

// staticOnly is the pool configuration to write when the pool source does
// not know the Service pools yet (MetalLB's objects not read): the state's
// own Service pools and their eligibility, kept as they are, with the
// static pools and eligibility of want (the config in force) in place of
// the state's.
func staticOnly(have []lbpool.Pool, haveElig map[string][]string, want []lbpool.Pool, wantElig map[string][]string) ([]lbpool.Pool, map[string][]string) {
	pools := slices.DeleteFunc(slices.Clone(have), func(p lbpool.Pool) bool { return lbpool.IsStatic(p.Name) })
	elig := map[string][]string{}
	for k, v := range haveElig {
		if !lbpool.IsStatic(k) {
			elig[k] = v
		}
	}
	for _, p := range want {
		if lbpool.IsStatic(p.Name) {
			pools = append(pools, p)
			if hosts, ok := wantElig[p.Name]; ok {
				elig[p.Name] = hosts
			}
		}
	}
	return pools, elig
}
