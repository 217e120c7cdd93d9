package l2

import (
	"context"
	"log/slog"
	"maps"
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
	// linger is announce.handoverLinger.
	linger time.Duration
	// labels returns the labels of the Services holding an IP, for
	// advertisements with serviceSelectors (UseServiceLabels); nil: none.
	labels func(netip.Addr) []map[string]string

	// Set by Start.
	ann    leaseTable
	vips   loAddrs
	served *announce.Interfaces
	cancel context.CancelFunc
	wg     sync.WaitGroup // followLinks

	mu       sync.Mutex // serialises SetLeases: VIPs on lo and announcements change together
	base     []string   // interfaces served whatever the advertisements in force say
	last     []netip.Addr
	scope    func(netip.Addr) (ifaces []string, ok, inPool bool)
	scopeCfg *config.Config
	// selective is set while scopeCfg has serviceSelectors (and labels are
	// known): scope then depends on labels that change without the config.
	selective bool
	// where is, per IP announced now, the interfaces it is announced on
	// (nil: every served one), so an IP that leaves every pool in force
	// stays announced where it was.
	where map[netip.Addr][]string
	// outside are the leased IPs in no pool in force (logged once each).
	outside map[netip.Addr]bool
	// lingering are IPs given up, kept on lo until their time; onLo is
	// what lo holds (leased plus lingering); lingerT fires at the first
	// linger's end; closed stops it re-arming.
	lingering map[netip.Addr]time.Time
	onLo      []netip.Addr
	lingerT   *time.Timer
	closed    bool
}

// New returns a Speaker for cfg that touches nothing until Start. inForce
// supplies the pools and advertisements in force (kube.Part.PoolConfig);
// nil means cfg's.
func New(cfg *config.Config, inForce func() *config.Config, log *slog.Logger) *Speaker {
	if inForce == nil {
		inForce = func() *config.Config { return cfg }
	}
	return &Speaker{cfg: cfg, inForce: inForce, log: log, follow: cfg.Kubernetes.MetallbCRDs,
		linger: cfg.Announce.HandoverLinger, where: map[netip.Addr][]string{}, outside: map[netip.Addr]bool{},
		lingering: map[netip.Addr]time.Time{}}
}

// UseServiceLabels makes the Speaker match advertisements' serviceSelectors
// against labels(ip), the labels of the Services holding ip (one map each;
// kube.Part.ServiceLabels, read from the raft state). Without it an
// advertisement with serviceSelectors announces nothing. While one is in
// force, SetLeases recomputes every leased IP's interfaces on each call, so
// a relabelled Service is followed within a lease renewal. Call before
// Start.
func (s *Speaker) UseServiceLabels(labels func(netip.Addr) []map[string]string) { s.labels = labels }

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
// end, until), each on its pool's advertised interfaces, and keeps the
// leased IPs on lo (also those of pools no advertisement announces). An IP
// in no pool in force (lbpool keeps a live IP a pool edit left out; a
// restart before MetalLB's objects are read) is announced where it was,
// or on every served interface if it never was: raft granted it, so it
// must answer. An IP given up stays on lo, unannounced, for
// announce.handoverLinger. The same IPs again (a renewal) only move the
// lease end. ips is sorted; Start must have succeeded.
func (s *Speaker) SetLeases(ips []netip.Addr, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scoped := false
	if pc := s.inForce(); pc != s.scopeCfg {
		s.scope, s.scopeCfg, scoped = leaseScope(pc, s.labels), pc, true
		s.selective = pc.Selective() && s.labels != nil
		if s.follow {
			s.serve(pc.HostInterfaces(s.base))
		}
	}
	if !scoped && !s.selective && slices.Equal(ips, s.last) {
		s.ann.Renew(until)
		return
	}
	before := s.where
	out := s.leases(ips, until)
	if slices.Equal(ips, s.last) {
		if !scoped && maps.EqualFunc(before, s.where, slices.Equal) {
			s.ann.Renew(until) // labels unchanged, or their change moved nothing
			return
		}
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
	now := time.Now()
	for _, ip := range s.last {
		if _, kept := slices.BinarySearchFunc(ips, ip, netip.Addr.Compare); !kept && s.linger > 0 {
			s.lingering[ip] = now.Add(s.linger)
		}
	}
	s.setLo(ips, now)
	s.last = slices.Clone(ips)
	if added {
		s.ann.SetLeases(out)
	}
}

// leases computes the announcements for ips (see SetLeases) and records
// where each is announced. The caller holds mu.
func (s *Speaker) leases(ips []netip.Addr, until time.Time) []announce.Lease {
	out := make([]announce.Lease, 0, len(ips))
	where := make(map[netip.Addr][]string, len(ips))
	outside := map[netip.Addr]bool{}
	for _, ip := range ips {
		ifaces, ok, inPool := s.scope(ip)
		if !inPool {
			ifaces, ok = s.where[ip], true // nil if it never was: every served interface
			outside[ip] = true
			if !s.outside[ip] {
				s.log.Warn("announcing an IP that is in no pool in force where it was announced: its allocation is kept until its Service lets it go",
					"ip", ip, "interfaces", ifaces)
			}
		}
		if ok {
			out = append(out, announce.Lease{IP: ip, Until: until, Interfaces: ifaces})
			where[ip] = ifaces
		}
	}
	s.where, s.outside = where, outside
	return out
}

// setLo makes lo hold ips plus the lingering IPs whose time has not come
// at now, and arms the timer for the next linger's end. The caller holds
// mu.
func (s *Speaker) setLo(ips []netip.Addr, now time.Time) {
	want := slices.Clone(ips)
	var next time.Time
	for ip, end := range s.lingering {
		_, leased := slices.BinarySearchFunc(ips, ip, netip.Addr.Compare)
		if leased || !now.Before(end) {
			delete(s.lingering, ip)
			continue
		}
		want = append(want, ip)
		if next.IsZero() || end.Before(next) {
			next = end
		}
	}
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(want, s.onLo) {
		if err := s.vips.Set(want); err != nil {
			s.log.Warn("VIPs on lo", "err", err)
		}
		s.onLo = want
	}
	if next.IsZero() || s.closed {
		return
	}
	if s.lingerT == nil {
		s.lingerT = time.AfterFunc(next.Sub(now), s.lingerDone)
	} else {
		s.lingerT.Reset(next.Sub(now))
	}
}

// lingerDone takes the IPs whose linger ended off lo.
func (s *Speaker) lingerDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.setLo(s.last, time.Now())
	}
}

// Close withdraws every announcement, stops serving, waits for every
// interface's goroutine and removes the VIPs from lo, once the IPs given
// up last have lingered there for announce.handoverLinger (so Close takes
// up to that long). It does nothing when Start did not succeed.
func (s *Speaker) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.ann.Stop()
	s.mu.Lock()
	var last time.Time
	for _, end := range s.lingering {
		if end.After(last) {
			last = end
		}
	}
	s.mu.Unlock()
	if d := time.Until(last); d > 0 {
		s.log.Info("keeping given-up VIPs on lo for in-flight packets before exit", "for", d.Round(time.Millisecond))
		t := time.NewTimer(d)
		<-t.C
	}
	s.mu.Lock()
	s.closed = true
	if s.lingerT != nil {
		s.lingerT.Stop()
	}
	onLo := s.onLo
	s.onLo = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.served.Wait()
	if len(onLo) == 0 { // the last linger ended meanwhile
		return nil
	}
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
