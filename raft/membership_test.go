package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

func TestFollowerWriteFailsWithErrNotLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lid, _ := c.leader(10 * time.Second)
	for _, id := range c.ids {
		if id == lid {
			continue
		}
		_, err := c.store(id).Allocate(context.Background(), lbpool.Request{Key: "ns/x"})
		if !errors.Is(err, ErrNotLeader) {
			t.Errorf("Allocate on follower %s: %v, want ErrNotLeader", id, err)
		}
		if err := c.store(id).AddVoter(context.Background(), "h9", "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
			t.Errorf("AddVoter on follower %s: %v, want ErrNotLeader", id, err)
		}
	}
}

// TestGracefulCloseHandsOver closes an owner with LeaveOnShutdown: its IPs
// are leased elsewhere before Close returns, it leaves the configuration,
// and no lease ever overlaps. Then a new host joins with AddVoter, takes
// its rendezvous share, and is removed with RemoveServer.
func TestGracefulCloseHandsOver(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.LeaveOnShutdown = true })
	c.setPools(refPool(), nil)
	for i := 0; i < 30; i++ {
		c.allocate(fmt.Sprintf("ns/g-%02d", i))
	}
	c.converged(10 * time.Second)
	lid, ls := c.leader(5 * time.Second)
	victim := ""
	for _, id := range c.ids {
		if id != lid && len(ls.ownedBy(id)) > 0 {
			victim = id
		}
	}
	ips := ls.ownedBy(victim)
	start := time.Now()
	if err := c.stop(victim, 5*time.Second); err != nil {
		t.Fatalf("close %s: %v", victim, err)
	}
	closed := time.Since(start)
	c.waitMoved(victim, ips, time.Second)
	moved := time.Since(start)
	t.Logf("graceful close of %s (%d IPs): Close returned after %s, all leased elsewhere after %s", victim, len(ips), closed, moved)
	wait.ForBool(t, 5*time.Second, victim+" to leave the configuration", func() bool {
		f := ls.raft.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == victim {
				return false
			}
		}
		return true
	})
	c.checkNoOverlap()

	// Join a new host at run time.
	addr := freeport.Addr(t)
	cfg := Config{NodeID: "h9", BindAddr: addr, DataDir: t.TempDir(), TLS: c.ca.node(t, "h9"),
		Logger: testLogger(), LeaseObserver: c.rec, DialContext: c.proxy.dialer("h9")}
	c.proxy.addTarget("h9", addr)
	c.mu.Lock()
	c.ids = append(c.ids, "h9")
	c.nodes["h9"] = &testNode{cfg: cfg}
	c.mu.Unlock()
	c.start("h9")
	if err := ls.AddVoter(context.Background(), "h9", addr); err != nil {
		t.Fatal(err)
	}
	c.converged(10 * time.Second)
	if len(ls.ownedBy("h9")) == 0 {
		t.Errorf("joined host h9 owns no IPs")
	}
	if err := ls.RemoveServer(context.Background(), "h9"); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 5*time.Second, "h9's IPs to move after removal", func() bool { return len(ls.ownedBy("h9")) == 0 })
	c.crash("h9")
	c.mu.Lock()
	c.ids = c.ids[:len(c.ids)-1]
	c.mu.Unlock()
	c.converged(10 * time.Second)
	c.checkNoOverlap()
}

// TestChangesNotifies subscribes on a follower and expects a notification
// for a commit made on the leader, and one whenever its leases renew.
func TestChangesNotifies(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	lid, ls := c.leader(10 * time.Second)
	var f *Store
	for _, id := range c.ids {
		if id != lid {
			f = c.store(id)
		}
	}
	ch, stop := f.Changes()
	defer stop()
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	drain()
	a, err := ls.Allocate(context.Background(), lbpool.Request{Key: "ns/notify"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no change notification for the follower's copy of ns/notify")
		}
		if got, ok := f.Lookup("ns/notify"); ok && fmt.Sprint(got.IPs) == fmt.Sprint(a.IPs) {
			break
		}
	}
	// Renewals notify too, so an announcer learns new Until times.
	drain()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no notification within a second although leases renew every 50ms")
	}
}

// TestLeaderGracefulClose closes the leader without leaving: it hands its
// IPs and leadership over, and restarts into the group.
func TestLeaderGracefulClose(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := 0; i < 20; i++ {
		c.allocate(fmt.Sprintf("ns/l-%02d", i))
	}
	c.converged(10 * time.Second)
	lid, ls := c.leader(5 * time.Second)
	ips := ls.ownedBy(lid)
	start := time.Now()
	if err := c.stop(lid, 5*time.Second); err != nil {
		t.Fatalf("close leader %s: %v", lid, err)
	}
	closed := time.Since(start)
	c.waitMoved(lid, ips, 5*time.Second)
	t.Logf("leader %s closed in %s, its %d IPs leased elsewhere after %s", lid, closed, len(ips), time.Since(start))
	c.checkNoOverlap()
	c.start(lid)
	c.converged(10 * time.Second)
	c.checkNoOverlap()
}

// TestReplaceDeadHostUnderNewName: a follower dies for good; the operator
// removes it (after the refusals that guard members remove/add) and adds a
// replacement under a new name and address. The new host joins with an
// empty data dir and no peers, adopts the group's cluster ID from the
// leader's connection, and takes its rendezvous share.
func TestReplaceDeadHostUnderNewName(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for i := 0; i < 20; i++ {
		c.allocate(fmt.Sprintf("ns/n-%02d", i))
	}
	c.converged(10 * time.Second)
	lid, ls := c.leader(5 * time.Second)
	dead := ""
	for _, id := range c.ids {
		if id != lid {
			dead = id
		}
	}
	c.crash(dead)
	ctx := context.Background()
	if err := ls.RemoveServer(ctx, lid); !errors.Is(err, ErrRemoveLeader) {
		t.Errorf("remove the leader itself: %v, want ErrRemoveLeader", err)
	}
	if err := ls.RemoveServer(ctx, "h9"); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("remove an unknown host: %v, want ErrUnknownMember", err)
	}
	if err := ls.AddVoter(ctx, dead, freeport.Addr(t)); !errors.Is(err, ErrMemberExists) {
		t.Errorf("add an existing id: %v, want ErrMemberExists", err)
	}
	if err := ls.AddVoter(ctx, "h4", c.nodes[dead].cfg.BindAddr); !errors.Is(err, ErrMemberExists) {
		t.Errorf("add an existing address: %v, want ErrMemberExists", err)
	}
	if err := ls.AddVoter(ctx, "h 4", "127.0.0.1:1"); !errors.Is(err, ErrBadMember) {
		t.Errorf("add a bad id: %v, want ErrBadMember", err)
	}
	if err := ls.RemoveServer(ctx, dead); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.ids = slices.DeleteFunc(c.ids, func(id string) bool { return id == dead })
	c.mu.Unlock()
	c.converged(10 * time.Second)

	addr := freeport.Addr(t)
	cfg := Config{NodeID: "h4", BindAddr: addr, DataDir: t.TempDir(), TLS: c.ca.node(t, "h4"),
		Logger: testLogger(), LeaseObserver: c.rec, DialContext: c.proxy.dialer("h4")}
	c.proxy.addTarget("h4", addr)
	c.mu.Lock()
	c.ids = append(c.ids, "h4")
	c.nodes["h4"] = &testNode{cfg: cfg}
	c.mu.Unlock()
	h4 := c.start("h4")
	if !h4.ClusterID().IsZero() {
		t.Fatalf("a joining host has cluster ID %s before it was added", h4.ClusterID())
	}
	if err := ls.AddVoter(ctx, "h4", addr); err != nil {
		t.Fatal(err)
	}
	c.converged(10 * time.Second)
	if len(ls.ownedBy("h4")) == 0 {
		t.Errorf("replacement h4 owns no IPs")
	}
	if h4.ClusterID() != ls.ClusterID() {
		t.Errorf("h4 has cluster ID %s, the group %s", h4.ClusterID(), ls.ClusterID())
	}
	ms, err := ls.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
		if m.Leader != (m.ID == lid) || !m.Voter || !m.Healthy {
			t.Errorf("member %+v: want a healthy voter, leader only if %s", m, lid)
		}
	}
	want := slices.DeleteFunc([]string{"h1", "h2", "h3", "h4"}, func(id string) bool { return id == dead })
	if !slices.Equal(ids, want) {
		t.Errorf("members %v, want %v", ids, want)
	}
	c.checkNoOverlap()
}
