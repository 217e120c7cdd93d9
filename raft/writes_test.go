package raft

import (
	"context"
	"testing"
	"time"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/wait"
)

// TestAllocateUnchangedWritesNothing: an Allocate that would leave the
// allocation as it is returns it without a raft entry (compare before
// write); one that changes it still commits.
func TestAllocateUnchangedWritesNothing(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.setPools(refPool(), nil)
	_, s := c.leader(10 * time.Second)
	ctx := context.Background()
	req := lbpool.Request{Key: "ns/web", Ports: []lbpool.Port{{Protocol: "TCP", Port: 80}}, TrafficPolicyCluster: true}
	first, err := s.Allocate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	settled := func() uint64 {
		var idx uint64
		wait.ForBool(t, 5*time.Second, "log applied", func() bool {
			idx = s.State().AppliedIndex
			return s.raft.AppliedIndex() == s.raft.LastIndex()
		})
		return idx
	}
	before := settled()
	for range 100 {
		again, err := s.Allocate(ctx, req)
		if err != nil || again.IPs[0] != first.IPs[0] {
			t.Fatalf("repeat Allocate = %v, %v; want %v", again, err, first.IPs)
		}
	}
	if after := settled(); after != before {
		t.Errorf("100 unchanged Allocates moved the applied index %d -> %d, want no entry", before, after)
	}
	req.Ports = append(req.Ports, lbpool.Port{Protocol: "TCP", Port: 443})
	if _, err := s.Allocate(ctx, req); err != nil {
		t.Fatal(err)
	}
	if after := settled(); after == before {
		t.Error("a changed request (port added) wrote no entry")
	}
	if got, _ := s.Lookup("ns/web"); len(got.Ports) != 2 {
		t.Errorf("ports after the change = %v, want 80 and 443", got.Ports)
	}
}
