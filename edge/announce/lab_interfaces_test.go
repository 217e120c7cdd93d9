package announce

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// TestLabInterfacesFollowSet: an Interfaces set starts answering on an
// interface when Set adds it and stops when Set drops it, while the other
// interface keeps answering. Two veth pairs inside one edge host stand in
// (the announcer serves lb0 and lb1, arping asks through lb0p and lb1p).
func TestLabInterfacesFollowSet(t *testing.T) {
	e := newLab(t, "edge1")
	vip := netip.MustParseAddr("10.99.0.200")
	for i, pair := range [][2]string{{"lb0", "lb0p"}, {"lb1", "lb1p"}} {
		mac := "02:ed:00:00:01:0" + string(rune('1'+i))
		e.mustExec(t, "edge1", "ip", "link", "add", pair[0], "address", mac, "type", "veth", "peer", "name", pair[1])
		net := "10.9" + string(rune('8'+i)) + ".0."
		e.mustExec(t, "edge1", "ip", "addr", "add", net+"1/24", "dev", pair[0])
		e.mustExec(t, "edge1", "ip", "addr", "add", net+"2/24", "dev", pair[1])
		e.mustExec(t, "edge1", "ip", "link", "set", pair[0], "up")
		e.mustExec(t, "edge1", "ip", "link", "set", pair[1], "up")
	}
	a := NewResponder()
	a.SetLeases(leaseFor(vip, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	ifs := a.NewInterfaces(ctx, func(ctx context.Context, name string) {
		_ = e.Do("edge1", func() error { a.Run(ctx, name); return nil })
	})
	t.Cleanup(func() { cancel(); ifs.Wait() })

	answers := func(peer, mac string) bool {
		out, _ := e.Exec("edge1", "arping", "-c", "1", "-W", "0.2", "-w", "1", "-i", peer, vip.String())
		return strings.Contains(strings.ToLower(out), "bytes from "+mac)
	}
	const lb0, lb1 = "02:ed:00:00:01:01", "02:ed:00:00:01:02"

	if started, _ := ifs.Set([]string{"lb0"}); !slices.Equal(started, []string{"lb0"}) {
		t.Fatalf("started %v, want [lb0]", started)
	}
	wait.ForBool(t, 10*time.Second, "lb0 answering", func() bool { return answers("lb0p", lb0) })
	if answers("lb1p", lb1) {
		t.Fatal("lb1 answers before it was added")
	}
	if started, stopped := ifs.Set([]string{"lb1", "lb0"}); !slices.Equal(started, []string{"lb1"}) || stopped != nil {
		t.Fatalf("started %v stopped %v, want [lb1] []", started, stopped)
	}
	start := time.Now()
	if err := wait.UntilEvery(10*time.Second, measurePoll, "lb1 answering once added", func() (bool, string) { return answers("lb1p", lb1), "" }); err != nil {
		t.Fatal(err)
	}
	t.Logf("lb1 answered %v after Set added it", time.Since(start).Round(time.Millisecond))
	if _, stopped := ifs.Set([]string{"lb0"}); !slices.Equal(stopped, []string{"lb1"}) {
		t.Fatalf("stopped %v, want [lb1]", stopped)
	}
	wait.ForBool(t, 10*time.Second, "lb1 silent once dropped", func() bool { return !answers("lb1p", lb1) })
	if !answers("lb0p", lb0) {
		t.Error("lb0 stopped answering when lb1 was dropped")
	}
	if got := ifs.Served(); !slices.Equal(got, []string{"lb0"}) {
		t.Errorf("Served() = %v, want [lb0]", got)
	}
}
