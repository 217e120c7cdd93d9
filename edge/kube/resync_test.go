package kube

import (
	"fmt"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// Resync measurement: resyncServices Services, informers resyncing every
// resyncPeriod, watched for resyncWindow (several resyncs).
const (
	resyncServices = 40
	resyncPeriod   = 300 * time.Millisecond
	resyncWindow   = 3 * time.Second
)

// TestResyncWritesNothing counts the raft entries that informer resyncs
// of allocated Services write: none; nor does the apiserver see a write
// (every Service keeps its resourceVersion, both pool annotations
// included). Resyncs (same resourceVersion) are dropped, and a sync that
// would leave an allocation as it is compares before it writes. Before both, every resync wrote one fsync'd entry per
// Service (resyncServices x resyncs in the window; at the reference pool,
// 1,279 entries every 10 minutes).
func TestResyncWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver and raft over loopback")
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	st := mustRaftStore(t, "p=192.168.60.0/24")
	startControllerResync(t, srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)), st, Options{}, resyncPeriod)
	for i := range resyncServices {
		e.create(t, lbService(e.ns, fmt.Sprintf("s%02d", i), 80))
	}
	for i := range resyncServices {
		name := fmt.Sprintf("s%02d", i)
		e.waitIP(t, name)
		wait.For(t, waitTimeout, name+" pool annotations", func() (bool, string) {
			a := e.get(t, name).Annotations
			return a[AnnAllocatedFromPool] == "p" && a[AnnAllocatedFromPoolDeprecated] == "p", fmt.Sprint(a)
		})
	}
	versions := map[string]string{}
	for i := range resyncServices {
		name := fmt.Sprintf("s%02d", i)
		versions[name] = e.get(t, name).ResourceVersion
	}
	before := st.State().AppliedIndex
	changes, unsub := st.StateChanges()
	defer unsub()
	for end := time.After(resyncWindow); ; {
		select {
		case <-changes:
			continue
		case <-end:
		}
		break
	}
	writes := st.State().AppliedIndex - before
	t.Logf("%d Services, resync every %v, over %v: %d raft entries", resyncServices, resyncPeriod, resyncWindow, writes)
	// A couple of entries may be the group's own bookkeeping (hosts).
	if writes > 2 {
		t.Errorf("%d raft entries in %v of resyncs, want none", writes, resyncWindow)
	}
	for name, rv := range versions {
		if got := e.get(t, name).ResourceVersion; got != rv {
			t.Errorf("%s: resourceVersion %s -> %s during resyncs: edged wrote to it", name, rv, got)
		}
	}
}
