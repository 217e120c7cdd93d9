package admin

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestServeAndFetch(t *testing.T) {
	want := Status{
		Node: "edge1", RaftState: "Leader", Leader: "edge1", Term: 3,
		Members:     []Member{{ID: "edge1", Address: "10.4.0.11:7950", Voter: true, Healthy: true, Announce: 1}},
		Pools:       []Pool{{Name: "primary", TotalV4: 1279, InUseV4: 1}},
		Allocations: []Allocation{{Service: "default/web-service", Pool: "primary", IPs: []string{"10.4.11.0"}, Announcer: []string{"edge1"}}},
		StaticVIPs:  []StaticVIP{{Name: "stats", IP: "10.4.10.5", Holder: "edge1"}},
		Leases:      []string{"10.4.11.0"},
	}
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv, err := Listen(path, func() Status { return want }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := Fetch(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, got); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"default/web-service", "10.4.11.0", "primary", "edge1", "STATIC VIP", "stats", "10.4.10.5"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("text status lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestSecondServerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv, err := Listen(path, func() Status { return Status{} }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if _, err := Listen(path, func() Status { return Status{} }, nil, nil); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Listen error = %v, want 'already running'", err)
	}
}

func TestFetchNoDaemon(t *testing.T) {
	_, err := Fetch(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Fatalf("Fetch error = %v, want a hint that edged is not running", err)
	}
}
