package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeOperator is an Operator over a member list; it leads unless leader
// names another host.
type fakeOperator struct {
	mu      sync.Mutex
	self    string
	leader  Member
	members []Member
	calls   []string
}

func (f *fakeOperator) Members() ([]Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Member(nil), f.members...), nil
}

func (f *fakeOperator) write(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader.ID != f.self {
		return &NotLeaderError{Leader: f.leader.ID, Address: f.leader.Address}
	}
	f.calls = append(f.calls, call)
	return nil
}

func (f *fakeOperator) AddMember(_ context.Context, id, addr string) error {
	if !strings.Contains(addr, ":") {
		return fmt.Errorf("%w: address %q is not host:port", ErrInvalid, addr)
	}
	return f.write("add " + id + " " + addr)
}

func (f *fakeOperator) RemoveMember(_ context.Context, id string) error {
	if id == "nope" {
		return fmt.Errorf("remove %s: %w", id, ErrNotFound)
	}
	return f.write("remove " + id)
}

func (f *fakeOperator) TransferLeadership(_ context.Context, to string) error {
	return f.write("transfer " + to)
}

func (f *fakeOperator) SetDrain(_ context.Context, host string, drain bool) error {
	return f.write(fmt.Sprintf("drain %q %v", host, drain))
}

// serveFake serves op on a fresh socket and returns its path.
func serveFake(t *testing.T, op Operator) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv, err := Listen(path, func() Status { return Status{} }, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path
}

func TestMemberEndpoints(t *testing.T) {
	h1 := Member{ID: "edge1", Address: "10.4.0.11:7950", Voter: true, Leader: true, Healthy: true, Announce: 3}
	h2 := Member{ID: "edge2", Address: "10.4.0.12:7950", Voter: true, Healthy: true, AdminDrained: true}
	op := &fakeOperator{self: "edge1", leader: h1, members: []Member{h1, h2}}
	c := NewClient(serveFake(t, op))
	ctx := context.Background()

	got, err := c.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(op.members, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := WriteMembers(&buf, got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LEADER", "edge1  10.4.0.11:7950  true   true    true     -        3", "edge2", "admin"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("members text lacks %q:\n%s", want, buf.String())
		}
	}

	for _, err := range []error{
		c.AddMember(ctx, "edge4", "10.4.0.14:7950"),
		c.RemoveMember(ctx, "edge 3/x"),
		c.TransferLeadership(ctx, "edge2"),
		c.SetDrain(ctx, "", true),
		c.SetDrain(ctx, "edge2", false),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"add edge4 10.4.0.14:7950", "remove edge 3/x", "transfer edge2", `drain "" true`, `drain "edge2" false`}
	if diff := cmp.Diff(want, op.calls); diff != "" {
		t.Errorf("operator calls (-want +got):\n%s", diff)
	}

	if err := c.AddMember(ctx, "edge4", "nowhere"); err == nil || !strings.Contains(err.Error(), "not host:port") {
		t.Errorf("add with a bad address: %v, want the operator's reason", err)
	}
	if err := c.RemoveMember(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "remove nope: not found") {
		t.Errorf("remove unknown: %v", err)
	}

	// A follower refuses writes and names the leader.
	op.mu.Lock()
	op.self = "edge2"
	op.mu.Unlock()
	err = c.SetDrain(ctx, "", true)
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.Leader != "edge1" || nle.Address != "10.4.0.11:7950" {
		t.Fatalf("drain on a follower: %v, want a NotLeaderError naming edge1", err)
	}
	if want := "not the leader; the leader is edge1 (10.4.0.11:7950): run this there"; err.Error() != want {
		t.Errorf("follower refusal %q, want %q", err.Error(), want)
	}
}

func TestMemberEndpointsWithoutOperator(t *testing.T) {
	c := NewClient(serveFake(t, nil))
	if _, err := c.Members(context.Background()); err == nil || !strings.Contains(err.Error(), "no member operations") {
		t.Errorf("members without an operator: %v", err)
	}
}
