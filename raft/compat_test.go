package raft

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	hraft "github.com/hashicorp/raft"

	"github.com/goldentooth/edged/lbpool"
)

// An upgrade installs a newer edged over a running group, one host at a
// time: the new binary replays the log and restores the snapshots the
// previous one wrote. testdata/compat/<release>/ keeps what each released
// encoding wrote, and TestCompat reads every one of them with today's code:
//
//   - log.jsonl: raft log entries (index, term, data) as the release wrote them;
//   - results.json: each entry's Apply error ("" when it succeeded);
//   - snapshot.json: the release's snapshot of the state after the log.
//
// Today's FSM must give the same results, reach the same state (compared as
// today's snapshot of it), and restore the stored snapshot to that state.
// When an encoding changes, write a fixture of the release before the
// change with that release's code:
//
//	go test ./raft -run TestCompat -update-compat=cmd<commandVersion>-snap<snapshotFormat>
//
// cmd0-snap1 was written by edged before commands carried "v" (git 9458109).
var updateCompat = flag.String("update-compat", "", "write testdata/compat/NAME from this code's encoding")

// compatDir holds one directory per release encoding.
const compatDir = "testdata/compat"

// compatEntry is one stored log entry.
type compatEntry struct {
	Index uint64          `json:"index"`
	Term  uint64          `json:"term"`
	Data  json.RawMessage `json:"data"` // the entry's bytes, which are JSON
}

// compatLog is a log touching every command kind, built with this code's
// encoding. Settle items take their Changed index from the state so far.
func compatLog(t *testing.T) []compatEntry {
	t.Helper()
	f := newFSM(nil)
	var out []compatEntry
	add := func(k kind, p any) {
		e := compatEntry{Index: uint64(len(out) + 1), Term: 1, Data: mustCmd(t, k, p)}
		f.Apply(&hraft.Log{Index: e.Index, Term: e.Term, Data: e.Data})
		out = append(out, e)
	}
	v6 := lbpool.Pool{Name: "v6", AutoAssign: false, Ranges: []lbpool.Range{{
		First: netip.MustParseAddr("fd00:4::10"), Last: netip.MustParseAddr("fd00:4::1f")}}}
	add(kindSetPools, setPoolsCmd{Pools: append(refPool(), v6), Eligibility: map[string][]string{"v6": {"edge1", "edge2"}}})
	for _, id := range []string{"edge1", "edge2", "edge3"} {
		add(kindSetHost, setHostCmd{Host: HostState{ID: id, Healthy: true}})
	}
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "web/front", Namespace: "web",
		Ports: []lbpool.Port{{Protocol: "TCP", Port: 443}}, TrafficPolicyCluster: true}})
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "dns/coredns", Namespace: "dns",
		IPs: []netip.Addr{netip.MustParseAddr("10.4.11.53")}, SharingKey: "dns",
		Ports: []lbpool.Port{{Protocol: "UDP", Port: 53}}, TrafficPolicyCluster: true}})
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "dns/coredns-tcp", Namespace: "dns",
		IPs: []netip.Addr{netip.MustParseAddr("10.4.11.53")}, SharingKey: "dns",
		Ports: []lbpool.Port{{Protocol: "TCP", Port: 53}}, TrafficPolicyCluster: true}})
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "app/v6", Namespace: "app", Pool: "v6",
		Families: []lbpool.Family{lbpool.IPv6}, TrafficPolicyCluster: true}})
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "app/gone", Namespace: "app", TrafficPolicyCluster: true}})
	add(kindRelease, releaseCmd{Key: "app/gone"})
	var items []settleItem
	for _, a := range f.snapshotData().Assignments {
		items = append(items, settleItem{IP: a.IP, Owner: a.Owner, Changed: a.Changed})
	}
	add(kindSettle, settleCmd{Items: items})
	add(kindAdminDrain, adminDrainCmd{ID: "edge2", Drain: true})
	add(kindSetHost, setHostCmd{Host: HostState{ID: "edge3", Healthy: true, Draining: true}})
	add(kindRemoveHost, removeHostCmd{ID: "edge3"})
	add(kindAllocate, allocateCmd{Request: lbpool.Request{Key: "web/refused", Namespace: "web",
		IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, TrafficPolicyCluster: true}})
	return out
}

// replay applies entries to a fresh FSM and returns it with each entry's
// error text.
func replay(entries []compatEntry) (*fsm, []string) {
	f := newFSM(nil)
	var errs []string
	for _, e := range entries {
		r := f.Apply(&hraft.Log{Index: e.Index, Term: e.Term, Data: e.Data}).(applyResult)
		s := ""
		if r.Err != nil {
			s = r.Err.Error()
		}
		errs = append(errs, s)
	}
	return f, errs
}

func snapshotJSON(t *testing.T, f *fsm) []byte {
	t.Helper()
	var sink memSink
	f.mu.RLock()
	snap := &fsmSnapshot{data: f.snapshotData()}
	f.mu.RUnlock()
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func TestCompat(t *testing.T) {
	if *updateCompat != "" {
		writeCompat(t, filepath.Join(compatDir, *updateCompat))
	}
	dirs, err := os.ReadDir(compatDir)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures in %s: %v", compatDir, err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join(compatDir, d.Name())
			entries := readLog(t, filepath.Join(dir, "log.jsonl"))
			var wantErrs []string
			readJSON(t, filepath.Join(dir, "results.json"), &wantErrs)
			stored, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
			if err != nil {
				t.Fatal(err)
			}

			f, gotErrs := replay(entries)
			if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
				t.Errorf("Apply results of the stored log (-%s +today):\n%s", d.Name(), diff)
			}
			var want, got, restored snapshotData
			mustUnmarshal(t, stored, &want)
			mustUnmarshal(t, snapshotJSON(t, f), &got)
			if diff := cmp.Diff(want, got, addrCmp); diff != "" {
				t.Errorf("state after replaying the stored log (-%s snapshot +today):\n%s", d.Name(), diff)
			}

			nf := newFSM(nil)
			if err := nf.Restore(io.NopCloser(bytes.NewReader(stored))); err != nil {
				t.Fatalf("restore the stored snapshot: %v", err)
			}
			mustUnmarshal(t, snapshotJSON(t, nf), &restored)
			if diff := cmp.Diff(want, restored, addrCmp); diff != "" {
				t.Errorf("state restored from the stored snapshot (-%s +today):\n%s", d.Name(), diff)
			}
		})
	}
}

// TestCompatRefusesNewerEncodings: a command or snapshot from a newer
// encoding than this binary knows is refused with ErrBadCommand and
// changes nothing, rather than being half understood.
func TestCompatRefusesNewerEncodings(t *testing.T) {
	f, _ := replay(compatLog(t))
	before := snapshotJSON(t, f)
	newer := fmt.Sprintf(`{"kind":"removeHost","v":%d,"payload":{"id":"edge1"}}`, commandVersion+1)
	r := f.Apply(&hraft.Log{Index: 100, Data: []byte(newer)}).(applyResult)
	if !errors.Is(r.Err, ErrBadCommand) {
		t.Errorf("Apply(command version %d) = %v, want ErrBadCommand", commandVersion+1, r.Err)
	}
	var b, a snapshotData
	mustUnmarshal(t, before, &b)
	mustUnmarshal(t, snapshotJSON(t, f), &a)
	a.Applied = b.Applied // the refused entry still counts as applied
	if diff := cmp.Diff(b, a, addrCmp); diff != "" {
		t.Errorf("a refused command changed the state (-before +after):\n%s", diff)
	}

	var d map[string]any
	mustUnmarshal(t, before, &d)
	d["format"] = snapshotFormat + 1
	raw, _ := json.Marshal(d)
	if err := newFSM(nil).Restore(io.NopCloser(bytes.NewReader(raw))); !errors.Is(err, ErrBadCommand) {
		t.Errorf("Restore(snapshot format %d) = %v, want ErrBadCommand", snapshotFormat+1, err)
	}
}

// TestCommandsCarryVersion: every command written today names its encoding.
func TestCommandsCarryVersion(t *testing.T) {
	for _, e := range compatLog(t) {
		var env struct {
			V int `json:"v"`
		}
		mustUnmarshal(t, e.Data, &env)
		if env.V != commandVersion {
			t.Fatalf("entry %d: v = %d, want %d: %s", e.Index, env.V, commandVersion, e.Data)
		}
	}
}

func writeCompat(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries := compatLog(t)
	var log bytes.Buffer
	enc := json.NewEncoder(&log)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	f, errs := replay(entries)
	res, _ := json.MarshalIndent(errs, "", "  ")
	for name, b := range map[string][]byte{"log.jsonl": log.Bytes(), "results.json": res, "snapshot.json": snapshotJSON(t, f)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d entries to %s", len(entries), dir)
}

func readLog(t *testing.T, path string) []compatEntry {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []compatEntry
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e compatEntry
		mustUnmarshal(t, sc.Bytes(), &e)
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, b, v)
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %.80q: %v", b, err)
	}
}
