package l2

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/lbpool"
)

// linkPoll is how often edged looks for interfaces created or deleted
// while it runs when it serves every interface (MetalLB's speaker looks
// every 10 s too).
const linkPoll = 10 * time.Second

// leaseScope returns, for a leased IP, the interfaces it is announced on
// (nil: all served) and false when no advertisement of its pool that
// serves the IP's Services lets this host announce it
// (config.PoolInterfaces). inPool is false when the IP is in none of the
// config's pools. Without serviceSelectors in cfg the answer depends on the
// pool only and is computed once per config; with them it is computed per
// call from labels, the labels of the Services holding the IP (nil labels:
// none known).
func leaseScope(cfg *config.Config, labels func(netip.Addr) []map[string]string) func(netip.Addr) (ifaces []string, ok, inPool bool) {
	type pool struct {
		name   string
		ranges []lbpool.Range
		ifaces []string
		ok     bool
	}
	selective := cfg.Selective() && labels != nil
	pools := make([]pool, len(cfg.LBPools))
	for i, lp := range cfg.LBPools {
		pools[i].name, pools[i].ranges = lp.Name, lp.Ranges
		pools[i].ifaces, pools[i].ok = cfg.PoolInterfaces(lp.Name, nil)
	}
	return func(ip netip.Addr) ([]string, bool, bool) {
		ip = ip.Unmap()
		for _, p := range pools {
			if slices.ContainsFunc(p.ranges, func(r lbpool.Range) bool { return r.Contains(ip) }) {
				if selective {
					ifaces, ok := cfg.PoolInterfaces(p.name, labels(ip))
					return ifaces, ok, true
				}
				return p.ifaces, p.ok, true
			}
		}
		return nil, false, false
	}
}

// systemInterfaces lists the host's non-loopback interfaces.
func systemInterfaces() ([]string, error) {
	sys, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []string
	for _, i := range sys {
		if i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.Name)
		}
	}
	return out, nil
}

// withSystem is named (the interfaces the config names) plus each of sys
// (the host's interfaces) it does not hold yet, in first-seen order.
func withSystem(named, sys []string) []string {
	out := slices.Clone(named)
	for _, n := range sys {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// followLinks keeps serving every interface list returns (plus named, the
// ones the config names) until ctx ends: an interface created after start
// is served within every, a deleted one is let go instead of retried
// forever.
func (s *Speaker) followLinks(ctx context.Context, every time.Duration, named []string, list func() ([]string, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sys, err := list()
		if err != nil {
			s.log.Warn("interfaces not re-read", "err", err)
			continue
		}
		base := withSystem(named, sys)
		s.mu.Lock()
		s.base = base
		want := base
		if s.follow && s.scopeCfg != nil {
			want = s.scopeCfg.HostInterfaces(base)
		}
		s.serve(want)
		s.mu.Unlock()
	}
}
