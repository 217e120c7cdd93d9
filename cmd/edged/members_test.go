package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/goldentooth/edged/edge/admin"
)

// cliOperator is an admin.Operator that records calls; it is a follower of
// edge1 when follower is set.
type cliOperator struct {
	mu       sync.Mutex
	follower bool
	calls    []string
}

func (o *cliOperator) Members() ([]admin.Member, error) {
	return []admin.Member{
		{ID: "edge1", Address: "10.4.0.11:7950", Voter: true, Leader: true, Healthy: true, Announce: 2},
		{ID: "edge2", Address: "10.4.0.12:7950", Voter: true, Healthy: true, Draining: true, AdminDrained: true},
	}, nil
}

func (o *cliOperator) do(call string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.follower {
		return &admin.NotLeaderError{Leader: "edge1", Address: "10.4.0.11:7950"}
	}
	o.calls = append(o.calls, call)
	return nil
}

func (o *cliOperator) AddMember(_ context.Context, id, addr string) error {
	return o.do("add " + id + " " + addr)
}
func (o *cliOperator) RemoveMember(_ context.Context, id string) error { return o.do("remove " + id) }
func (o *cliOperator) TransferLeadership(_ context.Context, to string) error {
	return o.do("transfer " + to)
}
func (o *cliOperator) SetDrain(_ context.Context, host string, drain bool) error {
	return o.do(fmt.Sprintf("drain %q %v", host, drain))
}

func serveOperator(t *testing.T, op admin.Operator) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "edc") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "admin.sock")
	srv, err := admin.Listen(path, func() admin.Status { return admin.Status{} }, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path
}

func TestMembersCommands(t *testing.T) {
	op := &cliOperator{}
	sock := serveOperator(t, op)
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := execute(append(args, "--socket", sock), &out, &errb)
		return out.String(), errb.String(), code
	}
	out, errs, code := run("members", "list")
	if code != 0 {
		t.Fatalf("members list: exit %d: %s", code, errs)
	}
	for _, want := range []string{"ID", "LEADER", "DRAINED", "edge1", "10.4.0.11:7950", "edge2", "admin,host"} {
		if !strings.Contains(out, want) {
			t.Errorf("members list lacks %q:\n%s", want, out)
		}
	}
	if out, _, _ := run("members", "list", "--json"); !strings.Contains(out, `"adminDrained": true`) {
		t.Errorf("members list --json:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"members", "add", "edge4", "10.4.0.14:7950"}, "added edge4 (10.4.0.14:7950)"},
		{[]string{"members", "remove", "edge3"}, "removed edge3"},
		{[]string{"members", "transfer-leadership", "edge2"}, "leadership transferred"},
		{[]string{"drain", "edge2"}, "drained edge2"},
		{[]string{"undrain", "edge2"}, "undrained edge2"},
		{[]string{"drain"}, "drained this host"},
	} {
		out, errs, code := run(tc.args...)
		if code != 0 || !strings.Contains(out, tc.out) {
			t.Errorf("%v: exit %d, out %q, stderr %q; want %q", tc.args, code, out, errs, tc.out)
		}
	}
	want := `[add edge4 10.4.0.14:7950 remove edge3 transfer edge2 drain "edge2" true drain "edge2" false drain "" true]`
	if got := fmt.Sprint(op.calls); got != want {
		t.Errorf("operator calls %s, want %s", got, want)
	}
	if _, errs, code := run("members", "add", "edge4"); code == 0 || !strings.Contains(errs, "accepts 2 arg") {
		t.Errorf("members add with one argument: exit %d, %q", code, errs)
	}

	op.mu.Lock()
	op.follower = true
	op.mu.Unlock()
	_, errs, code = run("drain", "edge2")
	if want := "not the leader; the leader is edge1 (10.4.0.11:7950): run this there (there: edged drain edge2)"; code == 0 || !strings.Contains(errs, want) {
		t.Errorf("drain on a follower: exit %d, stderr %q; want %q", code, errs, want)
	}
}
