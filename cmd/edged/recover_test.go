package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// recoverHost writes an edged.yaml for edge1 of a three-host group whose
// other hosts never existed, and gives it raft state with one allocation
// by running a one-voter group on the same data dir (the shape a survivor's
// data dir has). It returns the config path.
func recoverHost(t *testing.T) (string, *config.Config) {
	t.Helper()
	dir, err := os.MkdirTemp("", "edr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	addr := freeport.Addr(t)
	path := filepath.Join(dir, "edged.yaml")
	yaml := fmt.Sprintf(`node: {name: edge1, dataDir: %s, adminSocket: %s}
raft:
  bindAddress: %q
  insecurePlaintext: true
  peers: [{id: edge1, address: %q}]
pools:
  - name: primary
    addresses: [10.4.11.0 - 10.4.15.254]
`, filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"), addr, addr)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := raft.Open(edge.RaftConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 10*time.Second, "edge1 to lead", s.IsLeader)
	ctx := context.Background()
	if err := s.SetPools(ctx, cfg.LBPools, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Allocate(ctx, lbpool.Request{Key: "default/web"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func runRecover(stdin string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"recover"}, args...))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(&errb, "edged: %v\n", err)
		return out.String(), errb.String(), 1
	}
	return out.String(), errb.String(), 0
}

func TestRecoverCommand(t *testing.T) {
	path, cfg := recoverHost(t)
	idFile := filepath.Join(cfg.Node.DataDir, "cluster-id")
	before, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}

	// Refused while a daemon answers on the admin socket.
	srv, err := admin.Listen(cfg.Node.AdminSocket, func() admin.Status { return admin.Status{} }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	if _, errs, code := runRecover("", "--config", path, "--yes"); code == 0 || !strings.Contains(errs, "edged is running on this host") {
		t.Errorf("recover beside a running edged: exit %d, stderr %q", code, errs)
	}
	srv.Shutdown(context.Background())

	// Not confirmed: nothing changes.
	out, errs, code := runRecover("no\n", "--config", path)
	if code == 0 || !strings.Contains(errs, "recover aborted") || !strings.Contains(out, "WARNING") {
		t.Errorf("unconfirmed recover: exit %d, out %q, stderr %q", code, out, errs)
	}
	if after, _ := os.ReadFile(idFile); !bytes.Equal(before, after) {
		t.Errorf("an aborted recover changed the cluster ID:\n%s\n%s", before, after)
	}

	out, errs, code = runRecover("recover\n", "--config", path, "--members", "edge1")
	if code != 0 {
		t.Fatalf("recover: exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{"last configuration: edge1", "new configuration:  edge1", "Recovered: edge1 is now cluster", "edged recover --members edge1=127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("recover output lacks %q:\n%s", want, out)
		}
	}
	after, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) || !strings.Contains(string(after), `"origin": "recover"`) {
		t.Errorf("cluster-id after recover:\n%s\nbefore:\n%s", after, before)
	}

	// The recovered host leads alone and kept its allocation.
	s, err := raft.Open(edge.RaftConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	wait.ForBool(t, 10*time.Second, "the recovered host to lead", s.IsLeader)
	if _, ok := s.Lookup("default/web"); !ok {
		t.Errorf("default/web's allocation is gone after recover")
	}
}
