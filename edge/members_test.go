package edge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// TestMembersAndDrainThroughAppliance runs one real edged and drives it
// through its admin socket as `edged members list`, `edged drain` and
// `edged undrain` do.
func TestMembersAndDrainThroughAppliance(t *testing.T) {
	peers := freeport.Addrs(t, 1)
	cfg := writeConfig(t, shortDir(t), 0, peers, "127.0.0.1:0")
	app := edge.New(cfg, quietLogger(t), nil)
	runApp(t, app)
	c := admin.NewClient(cfg.Node.AdminSocket)
	ctx := context.Background()
	wait.ForBool(t, 15*time.Second, "edge1 to lead and own its allocation", func() bool {
		s := app.Store()
		if s == nil || !s.IsLeader() {
			return false
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := s.Allocate(wctx, lbpool.Request{Key: "default/web"})
		ms, merr := c.Members(ctx)
		return err == nil && merr == nil && len(ms) == 1 && ms[0].Announce == 1
	})
	ms, err := c.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := admin.Member{ID: "edge1", Address: peers[0], Voter: true, Leader: true, Healthy: true, Announce: 1}
	if len(ms) != 1 || ms[0] != want {
		t.Fatalf("members %+v, want [%+v]", ms, want)
	}

	if err := c.SetDrain(ctx, "", true); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 5*time.Second, "edge1 drained", func() bool {
		ms, err := c.Members(ctx)
		return err == nil && ms[0].AdminDrained && ms[0].Announce == 0
	})
	if err := c.SetDrain(ctx, "edge1", false); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 5*time.Second, "edge1 undrained", func() bool {
		ms, err := c.Members(ctx)
		return err == nil && !ms[0].AdminDrained && ms[0].Announce == 1
	})
	if err := c.SetDrain(ctx, "edge9", true); err == nil {
		t.Errorf("draining an unknown host succeeded")
	}
	if err := c.RemoveMember(ctx, "edge1"); err == nil || !strings.Contains(err.Error(), "transfer leadership first") {
		t.Errorf("removing the leader itself: %v, want a refusal that says to transfer leadership first", err)
	}
}

// TestFollowerRefusesWritesNamingLeader: a write through a follower's admin
// socket is refused with the leader's name and raft address.
func TestFollowerRefusesWritesNamingLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-host raft cluster")
	}
	hosts := startCluster(t)
	l := leader(t, hosts)
	var f *host
	for _, h := range hosts {
		if h != l {
			f = h
		}
	}
	c := admin.NewClient(f.admin)
	ctx := context.Background()
	_, addr := l.app.Store().Leader()
	wait.ForBool(t, 10*time.Second, "the follower to know the leader", func() bool {
		id, _ := f.app.Store().Leader()
		return id == l.name
	})
	err := c.SetDrain(ctx, l.name, true)
	var nle *admin.NotLeaderError
	if !errors.As(err, &nle) {
		t.Fatalf("drain through follower %s: %v, want a NotLeaderError", f.name, err)
	}
	if want := fmt.Sprintf("not the leader; the leader is %s (%s): run this there", l.name, addr); err.Error() != want {
		t.Errorf("refusal %q, want %q", err.Error(), want)
	}
	if err := c.AddMember(ctx, "edge4", "127.0.0.1:1"); !errors.As(err, &nle) || nle.Leader != l.name {
		t.Errorf("members add through a follower: %v", err)
	}
	ms, err := c.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, m := range ms {
		if m.Leader {
			leaders++
			if m.ID != l.name {
				t.Errorf("follower lists %s as leader, want %s", m.ID, l.name)
			}
		}
	}
	if len(ms) != 3 || leaders != 1 {
		t.Errorf("follower lists %+v, want 3 members and one leader", ms)
	}
}
