package announce

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goldentooth/edged/test/wait"
)

// ndiscMACs returns every MAC that answered ndisc6 from host for ip.
func (e *labEnv) ndiscMACs(host, ip string) []string {
	out, _ := e.Exec(host, "ndisc6", "-q", "-m", "-n", "-r", "2", "-w", "500", ip, "eth0")
	var macs []string
	for _, f := range strings.Fields(out) {
		if m := strings.ToLower(f); strings.Count(m, ":") == 5 && !contains(macs, m) {
			macs = append(macs, m)
		}
	}
	return macs
}

// TestLabNDP: a peer resolves a leased IPv6 VIP through NDP from exactly
// its holder, an unleased one not at all, and an unsolicited advertisement
// on takeover moves the peer's neighbour entry.
func TestLabNDP(t *testing.T) {
	e := newLab(t, "edge1", "edge2", "client")
	opts := []Option{WithGratuitous(labCount, labInterval), WithRefresh(time.Minute)}
	a1, a2 := NewResponder(opts...), NewResponder(opts...)
	e.serve(t, "edge1", a1)
	e.serve(t, "edge2", a2)

	// As edge/vip does for the holder: the VIP on lo, which the kernel never
	// answers NDP for on eth0.
	e.mustExec(t, "edge1", "ip", "addr", "add", labVIP6.String()+"/128", "dev", "lo")
	reqs := testutil.ToFloat64(requestsReceived.WithLabelValues(labVIP6.String()))
	resps := testutil.ToFloat64(responsesSent.WithLabelValues(labVIP6.String()))
	garps := testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP6.String()))
	a1.SetLeases(leaseFor(labVIP6, time.Minute))
	// ndisc6 takes any advertisement for the target, so let the takeover
	// burst pass first: what it sees then is the answer to its solicitation.
	wait.ForBool(t, 2*time.Second, "takeover burst sent", func() bool {
		return testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP6.String()))-garps >= labCount
	})
	settle := time.Now().Add(2 * labInterval)
	wait.ForBool(t, time.Second, "burst received", func() bool { return time.Now().After(settle) })
	if got, want := e.ndiscMACs("client", labVIP6.String()), []string{e.mac["edge1"].String()}; !equal(got, want) {
		t.Fatalf("ndisc6 %s answered by %v, want exactly %v", labVIP6, got, want)
	}
	if got := testutil.ToFloat64(requestsReceived.WithLabelValues(labVIP6.String())) - reqs; got < 1 {
		t.Errorf("metallb_layer2_requests_received grew by %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(responsesSent.WithLabelValues(labVIP6.String())) - resps; got < 1 {
		t.Errorf("metallb_layer2_responses_sent grew by %v, want at least 1", got)
	}
	if got := e.ndiscMACs("client", "fd00:77::201"); len(got) != 0 {
		t.Errorf("unleased fd00:77::201 answered by %v", got)
	}

	// The kernel resolves the VIP (the echo itself needs no answer).
	_, _ = e.Exec("client", "ping", "-6", "-c", "1", "-W", "1", labVIP6.String())
	wait.ForBool(t, 3*time.Second, "client neighbour entry on edge1", func() bool { return e.neigh("client", labVIP6) == e.mac["edge1"].String() })

	a1.SetLeases(nil)
	before := testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP6.String()))
	e.mustExec(t, "edge1", "ip", "addr", "del", labVIP6.String()+"/128", "dev", "lo")
	e.mustExec(t, "edge2", "ip", "addr", "add", labVIP6.String()+"/128", "dev", "lo")
	a2.SetLeases(leaseFor(labVIP6, time.Minute))
	start := time.Now()
	if err := wait.UntilEvery(2*time.Second, measurePoll, "client neighbour entry on edge2", func() (bool, string) {
		got := e.neigh("client", labVIP6)
		return got == e.mac["edge2"].String(), "neighbour entry " + got
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("IPv6 neighbour entry moved %v after the lease moved", time.Since(start))
	wait.ForBool(t, time.Second, "unsolicited NA burst counted", func() bool {
		return testutil.ToFloat64(gratuitousSent.WithLabelValues(labVIP6.String()))-before >= labCount
	})
	if got, want := e.ndiscMACs("client", labVIP6.String()), []string{e.mac["edge2"].String()}; !equal(got, want) {
		t.Errorf("after takeover ndisc6 answered by %v, want exactly %v", got, want)
	}

	// Lapse: no answers once the lease ends, without a SetLeases call.
	ls := leaseFor(labVIP6, 100*time.Millisecond)
	a2.SetLeases(ls)
	wait.ForBool(t, time.Second, "lease end", func() bool { return time.Now().After(ls[0].Until) })
	if got := e.ndiscMACs("client", labVIP6.String()); len(got) != 0 {
		t.Errorf("ndisc6 answered by %v after the lease lapsed", got)
	}
}
