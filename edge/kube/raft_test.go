package kube

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// TestRaftRestartKeepsIPs runs one controller per edged host over a real
// 3-node raft group, then restarts every host: no IP changes.
func TestRaftRestartKeepsIPs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver and raft over loopback")
	}
	srv := kubetest.Start(t)
	e := &env{srv: srv, admin: srv.Client(t), ns: srv.Namespace(t)}
	cfg := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	dir := t.TempDir()
	var peers []raft.Peer
	for i, addr := range freeport.Addrs(t, 3) {
		peers = append(peers, raft.Peer{ID: fmt.Sprint("h", i), Address: addr})
	}
	open := func() ([]*raft.Store, context.CancelFunc) {
		var stores []*raft.Store
		for _, p := range peers {
			s, err := raft.Open(raft.Config{NodeID: p.ID, BindAddr: p.Address, DataDir: filepath.Join(dir, p.ID), Peers: peers, InsecurePlaintext: true})
			if err != nil {
				t.Fatalf("open %s: %v", p.ID, err)
			}
			stores = append(stores, s)
		}
		ctx, cancel := context.WithCancel(context.Background())
		for _, s := range stores {
			_, run := newController(clientFor(cfg), s, Options{}, 0)
			go func() { _ = run(ctx) }()
		}
		return stores, cancel
	}
	closeAll := func(stores []*raft.Store, cancel context.CancelFunc) {
		cancel()
		for _, s := range stores {
			ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			_ = s.Close(ctx)
			c()
		}
	}
	stores, cancel := open()
	leader := func() *raft.Store {
		var l *raft.Store
		wait.For(t, waitTimeout, "raft leader", func() (bool, string) {
			for _, s := range stores {
				if s.IsLeader() {
					l = s
					return true, ""
				}
			}
			return false, "no leader"
		})
		return l
	}
	if err := leader().SetPools(context.Background(), mustPools(t, "default="+referencePool), nil); err != nil {
		t.Fatal(err)
	}
	names := []string{"web-service", "database", "third"}
	want := map[string]string{}
	for _, n := range names {
		e.create(t, lbService(e.ns, n, 80))
	}
	for _, n := range names {
		want[n] = e.waitIP(t, n)
	}
	closeAll(stores, cancel)

	stores, cancel = open()
	defer func() { closeAll(stores, cancel) }()
	l := leader()
	// The new leader replays its log after election: wait for it.
	for _, n := range names {
		wait.For(t, waitTimeout, n+" in the replayed state", func() (bool, string) {
			al, ok := l.Lookup(e.ns + "/" + n)
			if !ok {
				return false, "missing"
			}
			if al.IPs[0].String() != want[n] {
				t.Fatalf("%s after restart holds %v, want %s", n, al.IPs, want[n])
			}
			return true, ""
		})
	}
	// A new Service after the restart gets a fresh address; the old ones stay.
	e.create(t, lbService(e.ns, "after", 80))
	e.waitIP(t, "after")
	for _, n := range names {
		if got := e.waitIP(t, n); got != want[n] {
			t.Errorf("%s moved from %s to %s", n, want[n], got)
		}
	}
}
