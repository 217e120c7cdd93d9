package kube

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/goldentooth/edged/test/kubetest"
)

// quietWindow is how long an exhausted pool is watched for raft writes:
// about 100 lease renewals at the default lease timing.
const quietWindow = 5 * time.Second

// TestExhaustedPoolIsQuiet: a Service waiting on an exhausted pool is not
// retried on every store notification (lease renewals fire ~20 a second;
// the controller listens only to applied changes, and a failed allocation
// is one), so the raft log and the Events stay quiet; it is allocated as
// soon as an address frees.
func TestExhaustedPoolIsQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver and raft over loopback")
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	st := mustRaftStore(t, "small=192.168.50.0/30")
	startController(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{})

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

func TestDue(t *testing.T) {
	a, b, c := cache.NewObjectName("ns", "a"), cache.NewObjectName("ns", "b"), cache.NewObjectName("ns", "c")
	waiting := map[cache.ObjectName]uint64{a: 3, b: 5, c: 4}
	if got := due(waiting, 3); len(got) != 0 {
		t.Errorf("due at the epoch of every attempt: %v, want none", got)
	}
	if got, want := due(waiting, 5), []cache.ObjectName{a, c}; !slices.Equal(got, want) {
		t.Errorf("due(5) = %v, want %v", got, want)
	}
	if got := due(waiting, 5); len(got) != 0 {
		t.Errorf("due(5) again = %v, want none: each change retries a key once", got)
	}
	if got, want := due(waiting, 6), []cache.ObjectName{a, b, c}; !slices.Equal(got, want) {
		t.Errorf("due(6) = %v, want %v", got, want)
	}
}

// TestWaitingForPools: a Service whose allocation failed because no pool
// existed yet (a new leader before its pools are written) gets an address
// as soon as the pools arrive, however the change and the failure
// interleave (the retry compares with the epoch read before the attempt).
func TestWaitingForPools(t *testing.T) {
	if testing.Short() {
		t.Skip("apiserver test")
	}
	e := startEnv(t, Options{})
	e.create(t, lbService(e.ns, "early", 80))
	if msg := e.waitEvent(t, "early", ReasonFailed); !strings.Contains(msg, "no auto-assign pool") {
		t.Fatalf("AllocationFailed says %q, want no auto-assign pool", msg)
	}
	if err := e.store.setPools(mustPools(t, "default=10.4.11.0 - 10.4.11.9")); err != nil {
		t.Fatal(err)
	}
	if ip := e.waitIP(t, "early"); ip != "10.4.11.0" {
		t.Errorf("early got %s after the pools arrived, want 10.4.11.0", ip)
	}
}

// TestWaitCatchesChangeBeforeIt: a free-epoch change that landed between a
// failed attempt and its Service being marked waiting (the pools written
// just after the attempt failed: watchStore was told while nothing
// waited) retries the Service at once instead of leaving it waiting for
// the next change, which may never come.
func TestWaitCatchesChangeBeforeIt(t *testing.T) {
	st, err := newMemStore(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{store: st, waiting: map[cache.ObjectName]uint64{}, log: slog.New(slog.DiscardHandler),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]())}
	defer c.queue.ShutDown()
	epoch := st.FreeEpoch() // read before the attempt
	if err := st.setPools(mustPools(t, "p=192.168.50.0/30")); err != nil {
		t.Fatal(err)
	}
	name := cache.NewObjectName("ns", "svc")
	c.wait(name, epoch)
	if n := c.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d keys after wait, want the Service retried at once", n)
	}
	c.wait(name, st.FreeEpoch()) // nothing changed since: it waits
	if n := c.queue.Len(); n != 1 {
		t.Errorf("queue holds %d keys, want no second retry without a change", n)
	}
}
