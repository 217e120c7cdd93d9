package failover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/edgelab"
	"github.com/goldentooth/edged/test/wait"
)

// Bounds of one trial; generous, because other tests share the 2 cores.
const (
	steadyTimeout  = 15 * time.Second
	recoverTimeout = 30 * time.Second
	healthyTimeout = 60 * time.Second
	// settleWindow keeps watching the client after the IP moved, so a hole
	// after the first good answer is still seen.
	settleWindow = 300 * time.Millisecond
	// splitWindow is how long a partition is watched after the other side
	// took the IP over.
	splitWindow = time.Second
	// holderPoll is how often a trial looks for a new holder, finer than
	// wait.Interval: the handovers it waits for are timed in ms.
	holderPoll = 10 * time.Millisecond
	// arpEvery is the recorder's request interval during partitions.
	arpEvery = 20 * time.Millisecond
	// maxServices bounds the Services created to give every host an IP.
	maxServices = 12
	// leaderCrashWindow is how long the client of another host's VIP is
	// watched after the leader's crash: past the election, the new
	// leader's fence and the old leases' end (about a second with the
	// default timings), so an outage they would cause is seen.
	leaderCrashWindow = 1500 * time.Millisecond
)

// fault is an edged scenario.
type fault int

const (
	ownerCrash fault = iota
	leaderOwnerCrash
	graceful
	// leaderCrash kills the leader while the client talks to a VIP owned
	// by another, healthy host: that VIP should not notice.
	leaderCrash
	// noFault is leaderCrash's control: the same probe and window with
	// nothing killed, so the longest stretch without an answer it reports
	// is the lab's own floor (probe interval, scheduling on shared cores),
	// the number to read leader-crash against.
	noFault
)

func (f fault) String() string {
	return [...]string{"owner-crash", "leader-owner-crash", "graceful-shutdown", "leader-crash", "no-fault"}[f]
}

// newLab builds the lab with one Service IP per edge host at least.
func newLab(t testing.TB) (*edgelab.Lab, []netip.Addr) {
	t.Helper()
	return newLabWith(t, edgelab.Options{})
}

// newLabWith is newLab with opts (e.g. the fast profile's raft timings).
// The VIP servers and the client probe always run as their own processes at
// real-time priority (edgelab.Options.ProbeProcesses): the gaps measured
// here are the failover's, not the test process's scheduling.
func newLabWith(t testing.TB, opts edgelab.Options) (*edgelab.Lab, []netip.Addr) {
	t.Helper()
	opts.ProbeProcesses = true
	start := time.Now()
	l := edgelab.New(t, opts)
	t.Logf("lab up in %v", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vips, err := l.CreateServices(ctx, maxServices)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Services in %v", len(vips), time.Since(start))
	return l, vips
}

// pick returns the n-th VIP (round robin) whose owner is (leader=true) or
// is not (leader=false) the raft leader.
func pick(l *edgelab.Lab, vips []netip.Addr, leader bool, n int) (netip.Addr, *edgelab.Edge, error) {
	if _, err := l.WaitStable(healthyTimeout); err != nil {
		return netip.Addr{}, nil, err
	}
	lead, err := l.Leader()
	if err != nil {
		return netip.Addr{}, nil, err
	}
	type cand struct {
		ip netip.Addr
		e  *edgelab.Edge
	}
	var cs []cand
	for _, ip := range vips {
		o, err := l.Owner(ip)
		if err != nil {
			return netip.Addr{}, nil, err
		}
		if (o == lead) == leader {
			cs = append(cs, cand{ip, o})
		}
	}
	if len(cs) == 0 {
		return netip.Addr{}, nil, fmt.Errorf("no VIP with leader-owner=%t", leader)
	}
	c := cs[n%len(cs)]
	return c.ip, c.e, nil
}

// waitHolderNot waits until a running host other than from leases ip.
func waitHolderNot(l *edgelab.Lab, ip netip.Addr, from *edgelab.Edge, d time.Duration) (*edgelab.Edge, error) {
	var h *edgelab.Edge
	if err := wait.UntilEvery(d, holderPoll, ip.String()+" leased by another host", func() (bool, string) {
		h = l.Holder(ip)
		return h != nil && h != from, ""
	}); err == nil {
		return h, nil
	}
	return nil, fmt.Errorf("%s not leased by another host than %s within %v", ip, from.ID, d)
}

// errMovedEarly means the IP started to move before the fault (a host
// whose renewals starved under load, or a rebalance): the trial measures
// nothing and is run again.
var errMovedEarly = errors.New("IP left its owner before the fault")

// restoreError means the lab could not be put back in order after a
// trial: the following trials would measure a broken lab.
type restoreError struct{ err error }

func (e *restoreError) Error() string { return "lab not restored: " + e.err.Error() }
func (e *restoreError) Unwrap() error { return e.err }

func broken(err error) error {
	if err == nil {
		return nil
	}
	return &restoreError{err}
}

// sample is one failover trial.
type sample struct {
	// gap is what the client saw.
	gap edgelab.Gap
	// moved is the time from the fault until another host held the lease
	// (edged's admin socket, polled every 10 ms); zero for keepalived.
	moved time.Duration
}

// edgedTrial runs one fault against edged and returns what the client saw.
// It puts the lab back in order before returning; if that fails the error
// is a *restoreError.
func edgedTrial(l *edgelab.Lab, vips []netip.Addr, f fault, n int) (smp sample, err error) {
	if f == leaderCrash || f == noFault {
		return leaderCrashTrial(l, vips, n, f == leaderCrash)
	}
	ip, owner, err := pick(l, vips, f == leaderOwnerCrash, n)
	if err != nil {
		return smp, broken(err)
	}
	defer func() {
		if f == graceful && owner.Running() {
			_ = owner.Proc().Wait(30 * time.Second) // still shutting down
		}
		revive(l, owner, &err)
	}()
	p, err := steadyProbe(l, ip, owner)
	if err != nil {
		return smp, err
	}
	defer p.Stop()
	var at time.Time
	termErr := make(chan error, 1)
	switch f {
	case ownerCrash, leaderOwnerCrash:
		if at, err = l.Crash(owner); err != nil {
			return smp, err
		}
		termErr <- nil
	case graceful:
		at = time.Now()
		go func() { termErr <- l.TermEdged(owner, 25*time.Second) }()
	}
	if _, err := waitHolderNot(l, ip, owner, recoverTimeout); err != nil {
		return smp, err
	}
	smp.moved = time.Since(at)
	if err := p.WaitRecovered(at, recoverTimeout); err != nil {
		return smp, fmt.Errorf("%s %s (%s): %w", f, owner.ID, ip, err)
	}
	if err := <-termErr; err != nil {
		return smp, fmt.Errorf("SIGTERM %s: edged exit: %w", owner.ID, err)
	}
	g, err := settledGap(p, at, fmt.Sprintf("%s: no success after the fault", ip))
	if err != nil {
		return smp, err
	}
	smp.gap = g
	return smp, nil
}

// revive brings e back after a trial's fault and waits for a healthy
// group; if that fails, *err becomes a *restoreError (the lab is broken).
func revive(l *edgelab.Lab, e *edgelab.Edge, err *error) {
	rerr := l.Revive(e)
	if rerr == nil {
		_, rerr = l.WaitHealthy(healthyTimeout)
	}
	if rerr != nil {
		*err = broken(rerr)
	}
}

// steadyProbe starts probing ip and returns once the probe is answered
// steadily and owner still owns and holds ip (else errMovedEarly: the
// trial is run again). On error the probe is stopped.
func steadyProbe(l *edgelab.Lab, ip netip.Addr, owner *edgelab.Edge) (*edgelab.Probe, error) {
	p := l.StartProbe(ip, edgelab.ProbeInterval)
	if err := p.WaitOK(20, steadyTimeout); err != nil {
		p.Stop()
		return nil, err
	}
	if o, err := l.Owner(ip); err != nil || o != owner || l.Holder(ip) != owner {
		p.Stop()
		return nil, fmt.Errorf("%s, %s: %w", ip, owner.ID, errMovedEarly)
	}
	return p, nil
}

// leaderCrashTrial crashes the leader (crash=false: the control, nothing
// is killed) while the client talks to a VIP the leader does not own, and
// reports as the gap the longest stretch without an answer in
// leaderCrashWindow (the VIP's owner is alive: any gap beyond the
// control's is the price of the leader's death alone).
func leaderCrashTrial(l *edgelab.Lab, vips []netip.Addr, n int, crash bool) (smp sample, err error) {
	ip, owner, err := pick(l, vips, false, n)
	if err != nil {
		return smp, broken(err)
	}
	lead, err := l.Leader()
	if err != nil {
		return smp, broken(err)
	}
	if crash {
		defer revive(l, lead, &err)
	}
	p, err := steadyProbe(l, ip, owner)
	if err != nil {
		return smp, err
	}
	defer p.Stop()
	at := time.Now()
	if crash {
		if at, err = l.Crash(lead); err != nil {
			return smp, err
		}
	}
	until := at.Add(leaderCrashWindow)
	time.Sleep(time.Until(until)) // observation window, not synchronisation
	if err := p.WaitRecovered(at, recoverTimeout); err != nil {
		return smp, fmt.Errorf("leader crash %s (%s on %s): %w", lead.ID, ip, owner.ID, err)
	}
	g, ok := edgelab.GapAfter(p.Results(), at, until)
	if !ok {
		return smp, fmt.Errorf("%s: no success after the leader's crash", ip)
	}
	g.First = g.Outage
	smp.gap = g
	return smp, nil
}

// edgedSplitTrial partitions the owner of a follower's VIP away from the
// other edge hosts (the client link stays up), heals, and reports how many
// MACs answered each of the client's ARP requests meanwhile.
func edgedSplitTrial(l *edgelab.Lab, vips []netip.Addr, n int) (r edgelab.ARPReport, err error) {
	ip, owner, err := pick(l, vips, false, n)
	if err != nil {
		return r, broken(err)
	}
	rec, err := l.RecordARP([]netip.Addr{ip}, arpEvery)
	if err != nil {
		return r, broken(err)
	}
	defer rec.Stop()
	if err := l.Partition(owner.Host); err != nil {
		return r, broken(err)
	}
	_, moveErr := waitHolderNot(l, ip, owner, recoverTimeout)
	time.Sleep(splitWindow) // observation window, not synchronisation
	if err := l.Heal(owner.Host); err != nil {
		return r, broken(err)
	}
	if _, err := l.WaitHealthy(healthyTimeout); err != nil {
		return r, broken(err)
	}
	time.Sleep(settleWindow) // observation window after the heal
	rec.Stop()
	return edgelab.Analyze(rec.Events(), ip), moveErr
}

// vrrpTrial crashes the keepalived master (SIGKILL + link down) and
// returns what the client saw; it brings the host back as a backup.
func vrrpTrial(v *vrrp) (smp sample, err error) {
	m, err := v.waitOneMaster(recoverTimeout)
	if err != nil {
		return smp, broken(err)
	}
	defer func() {
		// The host comes back as after a reboot: no VIP, link up, keepalived
		// started (BACKUP, nopreempt: it does not take the VIP back).
		rerr := v.dropVIP(m)
		if rerr == nil {
			rerr = v.l.SetLink(m.Host, true)
		}
		if rerr == nil {
			rerr = v.start(m)
		}
		if rerr == nil {
			_, rerr = v.waitOneMaster(recoverTimeout)
		}
		if rerr != nil {
			err = broken(rerr)
		}
	}()
	p := v.l.StartProbe(v.vip, edgelab.ProbeInterval)
	defer p.Stop()
	if err := p.WaitOK(20, steadyTimeout); err != nil {
		return smp, err
	}
	v.kill(m)
	if err := v.l.SetLink(m.Host, false); err != nil {
		return smp, err
	}
	at := time.Now()
	if err := p.WaitRecovered(at, recoverTimeout); err != nil {
		return smp, fmt.Errorf("keepalived %s: %w", v.name, err)
	}
	g, err := settledGap(p, at, fmt.Sprintf("keepalived %s: no success after the fault", v.name))
	if err != nil {
		return smp, err
	}
	smp.gap = g
	return smp, nil
}

// vrrpSplitTrial partitions the keepalived master from its peers (client
// link up), watches until a second master appears plus splitWindow, heals,
// and reports the ARP answers.
func vrrpSplitTrial(v *vrrp) (r edgelab.ARPReport, err error) {
	m, err := v.waitOneMaster(recoverTimeout)
	if err != nil {
		return r, broken(err)
	}
	rec, err := v.l.RecordARP([]netip.Addr{v.vip}, arpEvery)
	if err != nil {
		return r, broken(err)
	}
	defer rec.Stop()
	if err := v.l.Partition(m.Host); err != nil {
		return r, broken(err)
	}
	// A second master that never appears is no error here: the ARP
	// report after the window shows whether the split answered twice.
	_ = wait.UntilEvery(recoverTimeout, holderPoll, "a second keepalived master", func() (bool, string) {
		return len(v.masters()) >= 2, ""
	})
	time.Sleep(splitWindow) // observation window, not synchronisation
	if err := v.l.Heal(m.Host); err != nil {
		return r, broken(err)
	}
	if _, err := v.waitOneMaster(recoverTimeout); err != nil {
		return r, broken(err)
	}
	time.Sleep(settleWindow) // observation window after the heal
	rec.Stop()
	return edgelab.Analyze(rec.Events(), v.vip), nil
}

// settledGap watches the client for settleWindow more (a hole after the
// first good answer is still seen) and returns its gap since the fault at;
// what names the trial when nothing succeeded.
func settledGap(p *edgelab.Probe, at time.Time, what string) (edgelab.Gap, error) {
	until := time.Now().Add(settleWindow)
	time.Sleep(settleWindow) // observation window, not synchronisation
	g, ok := edgelab.GapAfter(p.Results(), at, until)
	if !ok {
		return g, errors.New(what)
	}
	return g, nil
}

// stopEdged kills edged on every host, so keepalived trials run alone.
func stopEdged(l *edgelab.Lab) {
	for _, e := range l.Edges {
		l.KillEdged(e)
	}
}

// percentile is the nearest-rank percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	k := int(p*float64(len(ds)) + 0.999999)
	if k < 1 {
		k = 1
	}
	if k > len(ds) {
		k = len(ds)
	}
	return ds[k-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
