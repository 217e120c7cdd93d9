package kube

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/kubetest"
)

// quietWindow is how long an exhausted pool is watched for raft writes:
// about 100 lease renewals at the default lease timing.
const quietWindow = 5 * time.Second

// TestExhaustedPoolIsQuiet: a Service waiting on an exhausted pool is not
// retried on every store notification (lease renewals fire ~20 a second),
// so the raft log and the Events stay quiet; it is allocated as soon as an
// address frees.
func TestExhaustedPoolIsQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver and raft over loopback")
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	self := raft.Peer{ID: "h0", Address: freeTCP(t)}
	st, err := raft.Open(raft.Config{NodeID: self.ID, BindAddr: self.Address, DataDir: filepath.Join(t.TempDir(), "raft"),
		Peers: []raft.Peer{self}, InsecurePlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Close(ctx)
	})
	waitFor(t, "raft leader", func() (bool, string) { return st.IsLeader(), "not leader" })
	if err := st.SetPools(context.Background(), mustPools(t, "small=192.168.50.0/30"), nil); err != nil {
		t.Fatal(err)
	}
	startController(t, srv.BindClusterRole(t, kubetest.Edged, edgedRole(t)), st, Options{})

	for _, n := range []string{"s1", "s2", "s3", "s4"} {
		e.create(t, lbService(e.ns, n, 80))
		e.waitIP(t, n)
	}
	e.create(t, lbService(e.ns, "waiting", 80))
	e.waitEvent(t, "waiting", ReasonFailed)

	changes, unsub := st.Changes()
	defer unsub()
	before := st.State().AppliedIndex
	notes := 0
	for end := time.After(quietWindow); ; {
		select {
		case <-changes:
			notes++
			continue
		case <-end:
		}
		break
	}
	applies := st.State().AppliedIndex - before
	failed := eventCount(t, e, "waiting", ReasonFailed)
	t.Logf("over %v: %d store notifications, %d raft applies, %d AllocationFailed events", quietWindow, notes, applies, failed)
	if notes < 10 {
		t.Fatalf("only %d store notifications in %v: the test no longer exercises lease-driven notifications", notes, quietWindow)
	}
	// A few applies may belong to the raft group's own bookkeeping (hosts,
	// settling) right after the last allocation; a retry per notification
	// would be ~notes.
	if applies > 5 {
		t.Errorf("%d raft applies in %v with one Service waiting on an exhausted pool, want <= 5", applies, quietWindow)
	}
	if failed > 3 {
		t.Errorf("%d AllocationFailed events, want <= 3", failed)
	}

	freed := e.waitIP(t, "s2")
	if err := e.admin.CoreV1().Services(e.ns).Delete(context.Background(), "s2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ip := e.waitIP(t, "waiting"); ip != freed {
		t.Errorf("waiting got %s, want the freed %s", ip, freed)
	}
}

// eventCount sums the counts of name's Events with reason.
func eventCount(t *testing.T, e *env, name, reason string) int {
	t.Helper()
	evs, err := e.admin.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Reason == reason {
			n += int(max(ev.Count, 1))
		}
	}
	return n
}

func TestFreeWatch(t *testing.T) {
	ip := func(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }
	view := func(version uint64, allocs ...lbpool.Allocation) raft.View {
		return raft.View{ConfigVersion: version, Allocations: allocs}
	}
	a1 := lbpool.Allocation{Key: "ns/a", IPs: ip("10.0.0.1")}
	a2 := lbpool.Allocation{Key: "ns/b", IPs: ip("10.0.0.2")}
	a1moved := lbpool.Allocation{Key: "ns/a", IPs: ip("10.0.0.3")}
	shared := a2
	shared.SharingKey = "k"
	steps := []struct {
		name string
		v    raft.View
		want bool
	}{
		{"first look is unknown", view(1, a1), true},
		{"nothing changed", view(1, a1), false},
		{"an allocation added", view(1, a1, a2), false},
		{"an allocation released", view(1, a2), true},
		{"same again", view(1, a2), false},
		{"pools changed", view(2, a2), true},
		{"re-added", view(2, a1, a2), false},
		{"an allocation moved", view(2, a1moved, a2), true},
		{"sharing allowed", view(2, a1moved, shared), true},
		{"unchanged", view(2, a1moved, shared), false},
	}
	var fw freeWatch
	for _, s := range steps {
		if got := fw.observe(s.v); got != s.want {
			t.Errorf("%s: observe = %v, want %v", s.name, got, s.want)
		}
	}
	fw.reset()
	if !fw.observe(view(2, a1moved, a2)) {
		t.Error("after reset: observe = false, want true")
	}
}
