package edgelab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/goldentooth/edged/test/vipprobe"
	"github.com/goldentooth/edged/test/wait"
)

// ProbeInterval is the client probe: one request every 10 ms.
const ProbeInterval = 10 * time.Millisecond

// probeTimeout bounds one request (vipprobe.Timeout).
const probeTimeout = vipprobe.Timeout

// Result is one probe request (vipprobe.Result).
type Result = vipprobe.Result

// Probe sends an HTTP GET to a VIP from the client host at a fixed
// interval, each on a new connection, and records every result. The same
// machinery probes UDP (StartUDPProbe): only send differs. With
// Options.ProbeProcesses the HTTP probe is the vipprobe command instead, at
// real-time priority, and its results arrive on its stdout.
type Probe struct {
	target string // what is probed, for messages
	stop   chan struct{}
	done   chan struct{} // closed when the loop (or the process) is over
	once   sync.Once

	mu      sync.Mutex
	results []Result
}

// StartProbe starts probing http://ip:ProbePort/ every interval from the
// client host; Close stops it.
func (l *Lab) StartProbe(ip netip.Addr, interval time.Duration) *Probe {
	url := vipprobe.URL(ip, ProbePort)
	if l.opts.ProbeProcesses {
		p, err := l.startProbeProcess(url, interval)
		if err != nil {
			l.t.Fatal(err)
		}
		return p
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := l.Do(l.Client, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: probeTimeout}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	client := vipprobe.NewClient(dial)
	return l.startProbe(url, interval, func() Result { return vipprobe.Get(client, url) })
}

// startProbe runs send every interval, each in its own goroutine, until
// Stop (also at the lab's Close).
func (l *Lab) startProbe(target string, interval time.Duration, send func() Result) *Probe {
	p := &Probe{target: target, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		vipprobe.Loop(p.stop, interval, send, p.record)
	}()
	l.onClose(p.Stop)
	return p
}

func (p *Probe) record(r Result) {
	p.mu.Lock()
	p.results = append(p.results, r)
	p.mu.Unlock()
}

// Stop stops sending and waits for the requests in flight.
func (p *Probe) Stop() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// Results returns a copy of the results so far, by start time.
func (p *Probe) Results() []Result {
	p.mu.Lock()
	out := append([]Result(nil), p.results...)
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// WaitOK waits up to d until the last n finished requests all succeeded.
func (p *Probe) WaitOK(n int, d time.Duration) error {
	err := wait.Until(d, fmt.Sprintf("%d successes in a row", n), func() (bool, string) {
		rs := p.Results()
		if len(rs) < n {
			return false, ""
		}
		for _, r := range rs[len(rs)-n:] {
			if !r.OK {
				return false, ""
			}
		}
		return true, ""
	})
	if err == nil {
		return nil
	}
	rs := p.Results()
	fails := 0
	for _, r := range rs {
		if !r.OK {
			fails++
		}
	}
	return fmt.Errorf("probe %s: not %d successes in a row within %v (%d requests, %d failed)", p.target, n, d, len(rs), fails)
}

// WaitRecovered waits up to d until a request started after since
// succeeded.
func (p *Probe) WaitRecovered(since time.Time, d time.Duration) error {
	err := wait.Until(d, "a success after the fault", func() (bool, string) {
		for _, r := range p.Results() {
			if r.OK && !r.Start.Before(since) {
				return true, ""
			}
		}
		return false, ""
	})
	if err != nil {
		return fmt.Errorf("probe %s: no success within %v of the fault", p.target, d)
	}
	return nil
}

// WaitFailing waits up to d until the last n finished requests all
// failed (a refused source, a withdrawn port).
func (p *Probe) WaitFailing(n int, d time.Duration) error {
	return wait.Until(d, fmt.Sprintf("%d failed requests in a row to %s", n, p.target), func() (bool, string) {
		rs := p.Results()
		if len(rs) < n {
			return false, ""
		}
		for _, r := range rs[len(rs)-n:] {
			if r.OK {
				return false, "still answered"
			}
		}
		return true, ""
	})
}

// Gap is what the client saw after a fault.
type Gap struct {
	// First is the time from the fault to the first successful response
	// to a request sent after the fault (the failover gap).
	First time.Duration
	// Outage is the longest stretch without a successful response between
	// the fault and until (it equals First after a crash; after a graceful
	// handover it also catches a hole in the middle).
	Outage time.Duration
	// Host served the first successful response.
	Host string
	// Failed counts failed requests sent after the fault.
	Failed int
}

// GapAfter measures the gap after fault from results, looking at requests
// sent in [fault, until). ok is false when no request succeeded.
func GapAfter(results []Result, fault, until time.Time) (g Gap, ok bool) {
	var ends []time.Time
	for _, r := range results {
		if r.Start.Before(fault) || !r.Start.Before(until) {
			continue
		}
		if !r.OK {
			g.Failed++
			continue
		}
		ends = append(ends, r.End)
		if !ok || r.End.Sub(fault) < g.First {
			g.First, g.Host, ok = r.End.Sub(fault), r.Host, true
		}
	}
	if !ok {
		return g, false
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	prev := fault
	for _, e := range ends {
		if d := e.Sub(prev); d > g.Outage {
			g.Outage = d
		}
		prev = e
	}
	return g, true
}
