package failover

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/edgelab"
)

// BenchmarkFailover measures the client's gap after each fault, b.N trials
// per scenario (use -benchtime 20x), edged first, then keepalived on the
// same hosts with edged stopped. Metrics: p50/p99/max of the gap (fault to
// the first successful response), p99 of the longest outage, and for the
// partitions the number of ARP requests two MACs answered. For leader-crash
// (the client talks to a VIP of another, healthy host) the gap is the
// longest stretch without an answer after the crash, and no-fault is its
// control: the same measure with nothing killed. failed-requests counts the
// requests sent after the fault that failed (a SYN lost to a dead owner is
// usually answered by the new one after the kernel's 1 s retransmission,
// just inside the probe's 1 s timeout, so crashes show few). machine/timer-floor is
// the machine's own share of any gap (timerFloor). The VIP servers and the
// probe are vipprobe processes at real-time priority (newLabWith).
func BenchmarkFailover(b *testing.B) {
	if err := keepalivedBinary(); err != nil {
		b.Fatal(err)
	}
	l, vips := newLab(b)
	edgedBenches(b, l, vips, "edged", ownerCrash, leaderOwnerCrash, leaderCrash, noFault, graceful)
	b.Run("machine/timer-floor", func(b *testing.B) { timerFloor(b, l) })
	stopEdged(l)
	for i, k := range []struct {
		name    string
		version int
		advert  string
	}{{"keepalived-v2-1s", 2, "1"}, {"keepalived-v3-10ms", 3, "0.01"}} {
		vip := netip.MustParseAddr(edgelab.FreeVIPBase).Next()
		for j := 0; j < i; j++ {
			vip = vip.Next()
		}
		if err := l.ServeVIP(vip); err != nil {
			b.Fatal(err)
		}
		v := newVRRP(l, k.name, k.version, k.advert, vip, 50+i)
		if err := v.startAll(); err != nil {
			b.Fatal(err)
		}
		b.Run(k.name+"/owner-crash", func(b *testing.B) {
			gaps(b, func(int) (sample, error) { return vrrpTrial(v) })
		})
		b.Run(k.name+"/partition", func(b *testing.B) {
			splits(b, func(int) (edgelab.ARPReport, error) { return vrrpSplitTrial(v) })
		})
		v.stopAll()
	}
}

// BenchmarkFailoverFastProfile is BenchmarkFailover's edged part under
// docs/raft.md's fast profile (lease 70 ms, heartbeat and election 100 ms):
// the client's gap after an owner crash and a leader-and-owner crash, and
// how many of the client's ARP requests two MACs answered under partition
// (the profile must keep that at zero).
//
//	go test ./test/failover -run '^$' -bench FailoverFastProfile -benchtime 20x -timeout 60m -v
func BenchmarkFailoverFastProfile(b *testing.B) {
	l, vips := newLabWith(b, edgelab.Options{RaftTimings: edgelab.FastProfile})
	edgedBenches(b, l, vips, "edged-fast", ownerCrash, leaderOwnerCrash, leaderCrash, noFault)
}

// edgedBenches runs the gap benchmark of each fault, then the partition
// one, as sub-benchmarks prefix/<fault> and prefix/partition.
func edgedBenches(b *testing.B, l *edgelab.Lab, vips []netip.Addr, prefix string, faults ...fault) {
	for _, f := range faults {
		b.Run(prefix+"/"+f.String(), func(b *testing.B) {
			gaps(b, func(n int) (sample, error) { return edgedTrial(l, vips, f, n) })
		})
	}
	b.Run(prefix+"/partition", func(b *testing.B) {
		splits(b, func(n int) (edgelab.ARPReport, error) { return edgedSplitTrial(l, vips, n) })
	})
}

// timerFloorFor is how long timerFloor measures: as long as the probing
// of 20 leader-crash trials.
const timerFloorFor = 30 * time.Second

// timerFloor reports how late a real-time thread in the client host wakes
// up for deadlines edgelab.ProbeInterval apart, with the lab up and idle:
// the part of any gap above ProbeInterval that is the machine's (the kernel
// and the hypervisor), not edged's. It runs once whatever b.N.
func timerFloor(b *testing.B, l *edgelab.Lab) {
	late, err := l.TimerFloor(edgelab.ProbeInterval, timerFloorFor)
	if err != nil {
		b.Fatal(err)
	}
	over := 0
	for _, d := range late {
		if d > 3*time.Millisecond {
			over++
		}
	}
	b.ReportMetric(ms(percentile(late, 0.50)), "late-p50-ms")
	b.ReportMetric(ms(percentile(late, 0.99)), "late-p99-ms")
	b.ReportMetric(ms(percentile(late, 1)), "late-max-ms")
	b.ReportMetric(float64(over), "late-over-3ms")
	b.ReportMetric(float64(len(late)), "wakeups")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d wake-ups %v apart in %v: late p50 %v, p99 %v, max %v; %d over 3 ms", len(late), edgelab.ProbeInterval,
		timerFloorFor, percentile(late, 0.50), percentile(late, 0.99), percentile(late, 1), over)
}

// maxRetries bounds the reruns of a trial whose IP moved before the fault.
const maxRetries = 3

// gaps runs b.N trials and reports the gap percentiles.
func gaps(b *testing.B, trial func(n int) (sample, error)) {
	var first, outage, moved []time.Duration
	failed, failedRequests := 0, 0
	for i := 0; i < b.N; i++ {
		smp, err := trial(i)
		for retry := 0; retry < maxRetries && errors.Is(err, errMovedEarly); retry++ {
			b.Logf("trial %d: %v; again", i, err)
			smp, err = trial(i)
		}
		var re *restoreError
		if errors.As(err, &re) {
			b.Fatalf("trial %d: %v", i, err)
		}
		if err != nil {
			b.Errorf("trial %d: %v", i, err)
			failed++
			continue
		}
		failedRequests += smp.gap.Failed
		first = append(first, smp.gap.First)
		outage = append(outage, smp.gap.Outage)
		if smp.moved > 0 {
			moved = append(moved, smp.moved)
		}
	}
	if len(first) == 0 {
		return
	}
	b.ReportMetric(ms(percentile(first, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(first, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(first, 1)), "max-ms")
	b.ReportMetric(ms(percentile(outage, 0.99)), "outage-p99-ms")
	b.ReportMetric(float64(failed), "failed-trials")
	b.ReportMetric(float64(failedRequests), "failed-requests")
	if len(moved) > 0 {
		b.ReportMetric(ms(percentile(moved, 0.50)), "lease-moved-p50-ms")
		b.ReportMetric(ms(percentile(moved, 0.99)), "lease-moved-p99-ms")
		b.Logf("lease moved: %v", rounded(moved))
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("gaps: %v", rounded(first))
	b.Logf("%d trials: gap p50 %v p99 %v max %v; longest outage p50 %v p99 %v; %d failed",
		len(first), percentile(first, 0.50), percentile(first, 0.99), percentile(first, 1),
		percentile(outage, 0.50), percentile(outage, 0.99), failed)
}

// splits runs b.N partition trials and reports the split-brain answers.
func splits(b *testing.B, trial func(n int) (edgelab.ARPReport, error)) {
	dual, requests, withDual := 0, 0, 0
	var spread []time.Duration
	for i := 0; i < b.N; i++ {
		r, err := trial(i)
		var re *restoreError
		if errors.As(err, &re) {
			b.Fatalf("trial %d: %v", i, err)
		}
		if err != nil {
			b.Errorf("trial %d: %v", i, err)
		}
		dual += r.Dual
		spread = append(spread, r.Spread...)
		requests += r.Requests
		if r.Dual > 0 {
			withDual++
		}
		if i == 0 {
			b.Logf("trial 0: %s", describe(r))
		}
	}
	b.ReportMetric(float64(dual), "dual-answered-requests")
	b.ReportMetric(float64(withDual), "trials-with-split-brain")
	b.ReportMetric(float64(requests), "arp-requests")
	if len(spread) > 0 {
		b.ReportMetric(ms(percentile(spread, 0.50)), "dual-spread-p50-ms")
		b.Logf("time between the two MACs' replies to one request: p50 %v, max %v", percentile(spread, 0.5), percentile(spread, 1))
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("%d trials: %d of %d ARP requests answered by two MACs; %d trials with split brain", b.N, dual, requests, withDual)
}

func describe(r edgelab.ARPReport) string {
	return fmt.Sprintf("%d requests, %d answered, %d by two or more MACs, MACs %v, %d switches", r.Requests, r.Answered, r.Dual, r.MACs, r.Switches)
}

// rounded returns ds (sorted by percentile) rounded to milliseconds.
func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
