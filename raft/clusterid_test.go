package raft

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	hraft "github.com/hashicorp/raft"
)

func TestBootstrapIDSameOnEveryPeer(t *testing.T) {
	a := []Peer{{"h1", "10.4.0.11:7950"}, {"h2", "10.4.0.12:7950"}, {"h3", "10.4.0.13:7950"}}
	b := []Peer{a[2], a[0], a[1]}
	if deriveBootstrapID(a) != deriveBootstrapID(b) {
		t.Errorf("bootstrap ID depends on the order of raft.peers")
	}
	moved := []Peer{a[0], a[1], {"h3", "10.4.0.14:7950"}}
	if deriveBootstrapID(a) == deriveBootstrapID(moved) {
		t.Errorf("bootstrap ID ignores peer addresses")
	}
	prev := deriveBootstrapID(a)
	r1 := deriveRecoveredID(prev, a[:1])
	if r1 == prev || r1 != deriveRecoveredID(prev, a[:1]) || r1 == deriveRecoveredID(prev, a[1:2]) ||
		r1 == deriveRecoveredID(r1, a[:1]) {
		t.Errorf("recovered IDs must differ from the previous one and between member sets, and agree on one set")
	}
	got, err := parseClusterID(prev.String())
	if err != nil || got != prev {
		t.Errorf("parse(%s) = %s, %v", prev, got, err)
	}
}

// TestIdentityAdmit is the transport's decision on a peer's cluster ID.
func TestIdentityAdmit(t *testing.T) {
	ours, theirs := ClusterID{1}, ClusterID{2}
	for _, tc := range []struct {
		name    string
		id      ClusterID
		adopt   bool
		peer    ClusterID
		kind    byte
		ok      bool
		adopted ClusterID
	}{
		{"same group", ours, false, ours, connRaft, true, ours},
		{"other group", ours, false, theirs, connRaft, false, ours},
		{"peer without ID refused by a host with one", ours, false, ClusterID{}, connLease, false, ours},
		{"data dir from before cluster IDs admits all", ClusterID{}, false, theirs, connRaft, true, ClusterID{}},
		{"joining host adopts the leader's", ClusterID{}, true, theirs, connRaft, true, theirs},
		{"joining host does not adopt from a lease connection", ClusterID{}, true, theirs, connLease, true, ClusterID{}},
		{"joining host admits a peer without ID", ClusterID{}, true, ClusterID{}, connRaft, true, ClusterID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			i := &identity{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil)), id: tc.id, adopt: tc.adopt}
			err := i.admit(tc.peer, tc.kind)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errOtherGroup)) {
				t.Errorf("admit: %v, want ok=%v", err, tc.ok)
			}
			if i.current() != tc.adopted {
				t.Errorf("ID after admit %s, want %s", i.current(), tc.adopted)
			}
			_, onDisk, err := readClusterID(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.adopt && onDisk != tc.adopted {
				t.Errorf("ID on disk %s, want %s", onDisk, tc.adopted)
			}
		})
	}
}

// TestOpenIdentity: a data dir without raft state never keeps a stale ID.
func TestOpenIdentity(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	peers := []Peer{{"h1", "127.0.0.1:1"}, {"h2", "127.0.0.1:2"}}
	dir := t.TempDir()
	if err := writeClusterID(dir, clusterIDRecord{ID: ClusterID{9}.String(), Origin: originRecover}); err != nil {
		t.Fatal(err)
	}
	i, err := openIdentity(Config{DataDir: dir, Logger: log, Peers: peers}, false)
	if err != nil || i.current() != deriveBootstrapID(peers) || i.adopt {
		t.Fatalf("bootstrap over a stale file: %v, %s", err, i.current())
	}
	if fi, err := os.Stat(filepath.Join(dir, clusterIDFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cluster-id file: %v, %v; want mode 0600", fi, err)
	}
	i, err = openIdentity(Config{DataDir: dir, Logger: log}, true)
	if err != nil || i.current() != deriveBootstrapID(peers) {
		t.Errorf("reopen with state: %v, %s", err, i.current())
	}
	i, err = openIdentity(Config{DataDir: dir, Logger: log}, false)
	if err != nil || !i.current().IsZero() || !i.adopt {
		t.Errorf("joining host over a stale file: %v, id %s adopt %v; want no ID, adopting", err, i.current(), i.adopt)
	}
}

// TestAdminDrainInState: the flag replicates through the log, survives the
// leader's setHost updates, snapshots round-trip it, and a snapshot
// written before the flag existed restores it as false.
func TestAdminDrainInState(t *testing.T) {
	f := buildFSM(t, 20)
	next := uint64(100)
	apply := func(k kind, p any) {
		next++
		b := mustCmd(t, k, p)
		if r := f.Apply(&hraft.Log{Index: next, Data: b}).(applyResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if len(f.byOwner["h1"]) == 0 {
		t.Fatal("h1 owns nothing before the drain")
	}
	apply(kindAdminDrain, adminDrainCmd{ID: "h1", Drain: true})
	apply(kindSetHost, setHostCmd{Host: HostState{ID: "h1", Healthy: true}}) // the leader's view, without the flag
	if !f.hosts["h1"].AdminDrained || len(f.byOwner["h1"]) != 0 {
		t.Fatalf("h1 after drain and setHost: %+v owning %d", f.hosts["h1"], len(f.byOwner["h1"]))
	}
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.sortedHosts(), g.sortedHosts()); diff != "" {
		t.Errorf("hosts after restore (-want +got):\n%s", diff)
	}

	// A snapshot from before AdminDrained: hosts without the field.
	if !strings.Contains(sink.String(), `"AdminDrained":true`) {
		t.Fatalf("snapshot lacks the flag: %s", sink.String())
	}
	old := strings.ReplaceAll(sink.String(), `,"AdminDrained":true`, "")
	h := newFSM(nil)
	if err := h.Restore(io.NopCloser(strings.NewReader(old))); err != nil {
		t.Fatalf("restore an old snapshot: %v", err)
	}
	if h.hosts["h1"].AdminDrained || !h.hosts["h1"].Healthy {
		t.Errorf("h1 from an old snapshot: %+v, want healthy and not drained", h.hosts["h1"])
	}
	apply(kindAdminDrain, adminDrainCmd{ID: "h1", Drain: false})
	if len(f.byOwner["h1"]) == 0 {
		t.Errorf("h1 owns nothing after undrain")
	}
}
