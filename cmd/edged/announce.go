package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/vip"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

// announcer adapts the ARP/NDP announcer to the appliance: it serves every
// interface an advertisement names and converts raft leases.
type announcer struct {
	a      *announce.Announcer
	vips   *vip.Manager
	log    *slog.Logger
	cancel context.CancelFunc
	// poolConfig returns the pools and advertisements in force (edged.yaml
	// merged with MetalLB's objects when those are watched).
	poolConfig func() *config.Config

	// ifaces are the served interfaces; with MetalLB's objects as a pool
	// source they follow the advertisements (base plus every interface
	// one names).
	ifaces *announce.Interfaces
	base   []string // guarded by mu
	follow bool

	mu       sync.Mutex // serialises SetLeases: VIPs on lo and announcements change together
	last     []netip.Addr
	scope    func(netip.Addr) ([]string, bool)
	scopeCfg *config.Config
}

// SetLeases announces only leased IPs (checked per frame against the lease
// end), each on its pool's advertised interfaces, and keeps exactly the
// leased IPs on lo (also those of pools no advertisement announces). The
// same IPs again (a renewal) only move the lease end.
func (n *announcer) SetLeases(ips []netip.Addr, until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	scoped := false
	if pc := n.poolConfig(); pc != n.scopeCfg {
		n.scope, n.scopeCfg, scoped = leaseScope(pc), pc, true
		if n.follow {
			n.serve(servedInterfaces(n.base, pc))
		}
	}
	if !scoped && slices.Equal(ips, n.last) {
		n.a.Renew(until)
		return
	}
	out := make([]announce.Lease, 0, len(ips))
	for _, ip := range ips {
		if ifaces, ok := n.scope(ip); ok {
			out = append(out, announce.Lease{IP: ip, Until: until, Interfaces: ifaces})
		}
	}
	if slices.Equal(ips, n.last) {
		n.a.SetLeases(out)
		return
	}
	// A new VIP goes on lo before it is announced, so the takeover's
	// Neighbor Advertisements can come from the VIP itself; a withdrawn one
	// stops being announced before it leaves lo.
	added := slices.ContainsFunc(ips, func(ip netip.Addr) bool {
		_, found := slices.BinarySearchFunc(n.last, ip, netip.Addr.Compare)
		return !found
	})
	if !added {
		n.a.SetLeases(out)
	}
	if err := n.vips.Set(ips); err != nil {
		n.log.Warn("VIPs on lo", "err", err)
	}
	n.last = slices.Clone(ips)
	if added {
		n.a.SetLeases(out)
	}
}

// serve makes names the served interfaces and logs the change.
func (n *announcer) serve(names []string) {
	started, stopped := n.ifaces.Set(names)
	if len(started) > 0 || len(stopped) > 0 {
		n.log.Info("announcing", "interfaces", n.ifaces.Served(), "started", started, "stopped", stopped)
	}
}

// servedInterfaces is base plus every interface an advertisement of cfg
// names for this host (cfg.Node.Name), in first-seen order.
func servedInterfaces(base []string, cfg *config.Config) []string {
	out := slices.Clone(base)
	for _, ad := range cfg.L2Advertisements {
		if len(ad.Nodes) == 0 || slices.Contains(ad.Nodes, cfg.Node.Name) {
			out = union(out, ad.Interfaces...)
		}
	}
	return out
}

// union appends to dst each of names it does not hold yet.
func union(dst []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(dst, n) {
			dst = append(dst, n)
		}
	}
	return dst
}

func (n *announcer) Close() error {
	n.a.Stop()
	n.cancel()
	return n.vips.Set(nil)
}

// newAnnouncer starts announcing on the advertisements' interfaces (all
// non-loopback interfaces when one names none). poolConfig supplies the
// pools and advertisements in force; nil means cfg's. When MetalLB's objects
// are a pool source their advertisements may name any interface at any
// time: every interface of announce.interfaces (all non-loopback ones when
// empty) is served, plus every interface an advertisement in force names
// for this host (servedInterfaces, applied by the next SetLeases: within a
// renewal); each lease is still limited to its advertisement's interfaces.
func newAnnouncer(cfg *config.Config, poolConfig func() *config.Config, log *slog.Logger) (*announcer, error) {
	if poolConfig == nil {
		poolConfig = func() *config.Config { return cfg }
	}
	served := cfg
	if cfg.Kubernetes.MetallbCRDs {
		served = &config.Config{Announce: cfg.Announce}
	}
	named, all := namedInterfaces(served)
	ifaces, err := announceInterfaces(served)
	if err != nil {
		return nil, err
	}
	vips, err := vip.New()
	if err != nil {
		return nil, err
	}
	if err := vips.Set(nil); err != nil { // leftovers of a crash: no lease yet
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := announce.NewAnnouncer(
		announce.WithGratuitous(cfg.Announce.GARPCount, cfg.Announce.GARPInterval),
		announce.WithRefresh(cfg.Announce.RefreshInterval),
		announce.WithLogger(log))
	n := &announcer{a: a, vips: vips, log: log, cancel: cancel, poolConfig: poolConfig,
		base: ifaces, follow: cfg.Kubernetes.MetallbCRDs}
	// Run retries an interface that is missing, fails or is re-created.
	n.ifaces = a.NewInterfaces(ctx, nil)
	n.serve(ifaces)
	if all {
		go n.followLinks(ctx, linkPoll, named, systemInterfaces)
	}
	return n, nil
}

// advertInterfaces returns the interfaces ad announces on for this host,
// nil meaning every served interface.
func advertInterfaces(cfg *config.Config, ad config.L2Advertisement) []string {
	if len(ad.Interfaces) > 0 {
		return ad.Interfaces
	}
	return cfg.Announce.Interfaces
}

// leaseScope returns, for a leased IP, the interfaces it is announced on
// (nil: all served) and false when no advertisement of its pool lets this
// host announce it.
func leaseScope(cfg *config.Config) func(netip.Addr) ([]string, bool) {
	type pool struct {
		contains func(netip.Addr) bool
		ifaces   []string
		ok       bool
	}
	pools := make([]pool, len(cfg.LBPools))
	for i, lp := range cfg.LBPools {
		pools[i].contains = func(ip netip.Addr) bool {
			return slices.ContainsFunc(lp.Ranges, func(r lbpool.Range) bool { return r.Contains(ip) })
		}
		for _, ad := range cfg.AdvertisementsFor(i) {
			if len(ad.Nodes) > 0 && !slices.Contains(ad.Nodes, cfg.Node.Name) {
				continue
			}
			ifs := advertInterfaces(cfg, ad)
			switch {
			case !pools[i].ok:
				pools[i].ifaces, pools[i].ok = slices.Clone(ifs), true
			case pools[i].ifaces == nil || ifs == nil:
				pools[i].ifaces = nil
			default:
				pools[i].ifaces = union(pools[i].ifaces, ifs...)
			}
		}
	}
	return func(ip netip.Addr) ([]string, bool) {
		for _, p := range pools {
			if p.contains(ip.Unmap()) {
				return p.ifaces, p.ok
			}
		}
		return nil, false
	}
}

// announceInterfaces is the union of the advertisements' interfaces; an
// advertisement naming none adds announce.interfaces, or every non-loopback
// interface when that is empty too.
func announceInterfaces(cfg *config.Config) ([]string, error) {
	out, all := namedInterfaces(cfg)
	if !all {
		return out, nil
	}
	sys, err := systemInterfaces()
	if err != nil {
		return nil, err
	}
	return union(out, sys...), nil
}

// namedInterfaces is the union of the interfaces cfg names, and whether
// some advertisement (or the lack of any) means every interface.
func namedInterfaces(cfg *config.Config) (out []string, all bool) {
	all = len(cfg.L2Advertisements) == 0 && len(cfg.Announce.Interfaces) == 0
	for _, ad := range cfg.L2Advertisements {
		ifs := advertInterfaces(cfg, ad)
		all = all || len(ifs) == 0
		out = union(out, ifs...)
	}
	if len(cfg.L2Advertisements) == 0 {
		out = append(out, cfg.Announce.Interfaces...)
	}
	return out, all
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

// linkPoll is how often edged looks for interfaces created or deleted
// while it runs when it serves every interface (MetalLB's speaker looks
// every 10 s too).
const linkPoll = 10 * time.Second

// followLinks keeps serving every interface list returns (plus the ones
// cfg names) until ctx ends: an interface created after start is served
// within every, a deleted one is let go instead of retried forever.
func (n *announcer) followLinks(ctx context.Context, every time.Duration, named []string, list func() ([]string, error)) {
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
			n.log.Warn("interfaces not re-read", "err", err)
			continue
		}
		base := union(slices.Clone(named), sys...)
		n.mu.Lock()
		n.base = base
		want := base
		if n.follow && n.scopeCfg != nil {
			want = servedInterfaces(base, n.scopeCfg)
		}
		n.serve(want)
		n.mu.Unlock()
	}
}

// registerCollectors adds the components' package-level metrics.
func registerCollectors(reg *prometheus.Registry) {
	for _, c := range append(announce.Collectors(), haproxy.Collectors()...) {
		reg.MustRegister(c)
	}
}
