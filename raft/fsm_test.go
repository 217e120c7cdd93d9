package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	hraft "github.com/hashicorp/raft"

	"github.com/goldentooth/edged/lbpool"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// applyAll feeds commands to f as log entries starting at index 1.
func applyAll(t testing.TB, f *fsm, cmds ...[]byte) []applyResult {
	t.Helper()
	var out []applyResult
	for i, c := range cmds {
		r := f.Apply(&hraft.Log{Index: uint64(i + 1), Data: c})
		out = append(out, r.(applyResult))
	}
	return out
}

func mustCmd(t testing.TB, k kind, p any) []byte {
	t.Helper()
	b, err := encode(k, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memSink is a SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

func buildFSM(t testing.TB, n int) *fsm {
	t.Helper()
	f := newFSM(nil)
	cmds := [][]byte{
		mustCmd(t, kindSetPools, setPoolsCmd{Pools: refPool(), Eligibility: map[string][]string{"default": {"h2", "h1"}}}),
		mustCmd(t, kindSetHost, setHostCmd{Host: HostState{ID: "h1", Healthy: true}}),
		mustCmd(t, kindSetHost, setHostCmd{Host: HostState{ID: "h2", Healthy: true}}),
		mustCmd(t, kindSetHost, setHostCmd{Host: HostState{ID: "h3", Healthy: true, Draining: true}}),
	}
	for i := 0; i < n; i++ {
		cmds = append(cmds, mustCmd(t, kindAllocate, allocateCmd{Request: lbpool.Request{Key: fmt.Sprintf("ns/s%04d", i)}}))
	}
	cmds = append(cmds, mustCmd(t, kindRelease, releaseCmd{Key: "ns/s0001"}))
	for i, r := range applyAll(t, f, cmds...) {
		if r.Err != nil {
			t.Fatalf("command %d: %v", i, r.Err)
		}
	}
	return f
}

func snapshotBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func TestFSMSnapshotRoundTrip(t *testing.T) {
	f := buildFSM(t, 50)
	want := f.snapshotData()
	b := snapshotBytes(t, f)
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, g.snapshotData(), addrCmp, cmp.AllowUnexported()); d != "" {
		t.Errorf("restored state (-want +got):\n%s", d)
	}
	if d := cmp.Diff(b, snapshotBytes(t, g)); d != "" {
		t.Errorf("snapshot of restored state differs (-want +got):\n%s", d)
	}
	// Indexes are rebuilt: ownership and unsettled sets match.
	if d := cmp.Diff(len(f.byOwner["h1"]), len(g.byOwner["h1"])); d != "" {
		t.Errorf("byOwner h1 (-want +got):\n%s", d)
	}
}

func TestFSMApplyDeterministic(t *testing.T) {
	a, b := buildFSM(t, 30), buildFSM(t, 30)
	if d := cmp.Diff(snapshotBytes(t, a), snapshotBytes(t, b)); d != "" {
		t.Errorf("two replicas differ (-a +b):\n%s", d)
	}
}

func TestFSMAssignmentsAndSettle(t *testing.T) {
	f := buildFSM(t, 10)
	v := f.snapshotData()
	for _, a := range v.Assignments {
		if a.Owner != "h1" && a.Owner != "h2" {
			t.Errorf("%s owned by %q; only h1, h2 are eligible (h3 drains)", a.IP, a.Owner)
		}
		if a.Settled {
			t.Errorf("%s settled before any Settle command", a.IP)
		}
	}
	first := v.Assignments[0]
	stale := settleItem{IP: first.IP, Owner: first.Owner, Changed: first.Changed + 99}
	good := settleItem{IP: first.IP, Owner: first.Owner, Changed: first.Changed}
	f.Apply(&hraft.Log{Index: 1000, Data: mustCmd(t, kindSettle, settleCmd{Items: []settleItem{stale}})})
	if f.assign[first.IP].Settled {
		t.Fatal("a Settle for an older assignment settled the current one")
	}
	f.Apply(&hraft.Log{Index: 1001, Data: mustCmd(t, kindSettle, settleCmd{Items: []settleItem{good}})})
	if !f.assign[first.IP].Settled {
		t.Fatal("Settle did not settle")
	}
	// A host going down moves its IPs and unsettles them.
	f.Apply(&hraft.Log{Index: 1002, Data: mustCmd(t, kindSetHost, setHostCmd{Host: HostState{ID: first.Owner}})})
	if a := f.assign[first.IP]; a.Owner == first.Owner || a.Settled || a.Changed != 1002 {
		t.Errorf("after owner down: %+v", a)
	}
}

func TestFSMBadCommand(t *testing.T) {
	f := newFSM(nil)
	for _, data := range [][]byte{[]byte("{"), []byte(`{"kind":"nope","payload":{}}`), []byte(`{"kind":"allocate","payload":7}`)} {
		r := f.Apply(&hraft.Log{Index: 1, Data: data}).(applyResult)
		if r.Err == nil {
			t.Errorf("Apply(%s) = nil error", data)
		}
	}
}

func TestSnapshotIsJSON(t *testing.T) {
	var d snapshotData
	if err := json.Unmarshal(snapshotBytes(t, buildFSM(t, 3)), &d); err != nil {
		t.Fatal(err)
	}
}
