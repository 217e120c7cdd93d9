package l2

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/vip"
)

// leaseTable is what a Speaker needs of announce.Responder.
type leaseTable interface {
	SetLeases([]announce.Lease)
	Renew(until time.Time)
	Stop()
}

// loAddrs is what a Speaker needs of vip.Manager.
type loAddrs interface {
	Set([]netip.Addr) error
}

// Speaker announces the IPs this host holds raft leases for (MetalLB calls
// this part of a node its speaker). Start, then SetLeases on every lease
// change and renewal, then Close; the appliance (edge) does all three.
type Speaker struct {
	cfg *config.Config
	// inForce returns the pools and advertisements in force (edged.yaml
	// merged with MetalLB's objects when those are watched).
	inForce func() *config.Config
	log     *slog.Logger
	// follow is set when MetalLB's objects are a pool source: the served
	// interfaces then follow the advertisements in force (base plus every
	// interface one names for this host).
	follow bool

	// Set by Start.
	ann    leaseTable
	vips   loAddrs
	served *announce.Interfaces
	cancel context.CancelFunc
	wg     sync.WaitGroup // followLinks

	mu       sync.Mutex // serialises SetLeases: VIPs on lo and announcements change together
	base     []string   // interfaces served whatever the advertisements in force say
	last     []netip.Addr
	scope    func(netip.Addr) ([]string, bool)
	scopeCfg *config.Config
}

// New returns a Speaker for cfg that touches nothing until Start. inForce
// supplies the pools and advertisements in force (kube.Part.PoolConfig);
// nil means cfg's.
func New(cfg *config.Config, inForce func() *config.Config, log *slog.Logger) *Speaker {
	if inForce == nil {
		inForce = func() *config.Config { return cfg }
	}
	return &Speaker{cfg: cfg, inForce: inForce, log: log, follow: cfg.Kubernetes.MetallbCRDs}
}

// Start removes the VIPs a previous run left on lo and starts announcing,
// with no lease yet, on the advertisements' interfaces (every non-loopback
// interface when one names none, looked at again every linkPoll). With
// MetalLB's objects as a pool source their advertisements may name any
// interface at any time: then every interface of announce.interfaces (all
// non-loopback ones when empty) is served, plus every interface an
// advertisement in force names for this host, applied by the next SetLeases
// (within a renewal); each lease is still limited to its advertisement's
// interfaces. On error nothing was started.
func (s *Speaker) Start() error {
	static := s.cfg
	if s.follow {
		static = &config.Config{Announce: s.cfg.Announce}
	}
	named, all := static.AdvertisedInterfaces()
	ifaces := named
	if all {
		sys, err := systemInterfaces()
		if err != nil {
			return err
		}
		ifaces = withSystem(named, sys)
	}
	vips, err := vip.New()
	if err != nil {
		return err
	}
	if err := vips.Set(nil); err != nil { // leftovers of a crash: no lease yet
		return err
	}
	a := announce.NewResponder(
		announce.WithGratuitous(s.cfg.Announce.GARPCount, s.cfg.Announce.GARPInterval),
		announce.WithRefresh(s.cfg.Announce.RefreshInterval),
		announce.WithLogger(s.log))
	ctx, cancel := context.WithCancel(context.Background())
	s.ann, s.vips, s.cancel = a, vips, cancel
	// Run retries an interface that is missing, fails or is re-created.
	s.served = a.NewInterfaces(ctx, nil)
	s.mu.Lock()
	s.base = ifaces
	s.serve(ifaces)
	s.mu.Unlock()
	if all {
		s.wg.Go(func() { s.followLinks(ctx, linkPoll, named, systemInterfaces) })
	}
	return nil
}

// SetLeases announces only leased IPs (checked per frame against the lease
// end, until), each on its pool's advertised interfaces, and keeps exactly
// the leased IPs on lo (also those of pools no advertisement announces).
// The same IPs again (a renewal) only move the lease end. ips is sorted;
// Start must have succeeded.
func (s *Speaker) SetLeases(ips []netip.Addr, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scoped := false
	if pc := s.inForce(); pc != s.scopeCfg {
		s.scope, s.scopeCfg, scoped = leaseScope(pc), pc, true
		if s.follow {
			s.serve(pc.HostInterfaces(s.base))
		}
	}
	if !scoped && slices.Equal(ips, s.last) {
		s.ann.Renew(until)
		return
	}
	out := make([]announce.Lease, 0, len(ips))
	for _, ip := range ips {
		if ifaces, ok := s.scope(ip); ok {
			out = append(out, announce.Lease{IP: ip, Until: until, Interfaces: ifaces})
		}
	}
	if slices.Equal(ips, s.last) {
		s.ann.SetLeases(out)
		return
	}
	// A new VIP goes on lo before it is announced, so the takeover's
	// Neighbor Advertisements can come from the VIP itself; a withdrawn one
	// stops being announced before it leaves lo.
	added := slices.ContainsFunc(ips, func(ip netip.Addr) bool {
		_, found := slices.BinarySearchFunc(s.last, ip, netip.Addr.Compare)
		return !found
	})
	if !added {
		s.ann.SetLeases(out)
	}
	if err := s.vips.Set(ips); err != nil {
		s.log.Warn("VIPs on lo", "err", err)
	}
	s.last = slices.Clone(ips)
	if added {
		s.ann.SetLeases(out)
	}
}

// Close withdraws every announcement, stops serving, waits for every
// interface's goroutine and removes the VIPs from lo. It does nothing when
// Start did not succeed.
func (s *Speaker) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.ann.Stop()
	s.cancel()
	s.wg.Wait()
	s.served.Wait()
	return s.vips.Set(nil)
}

// serve makes names the served interfaces and logs the change. The caller
// holds mu.
func (s *Speaker) serve(names []string) {
	started, stopped := s.served.Set(names)
	if len(started) > 0 || len(stopped) > 0 {
		s.log.Info("announcing", "interfaces", s.served.Served(), "started", started, "stopped", stopped)
	}
}
