package config

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckSocketWaitsOutAReload: a socket that appears within
// socketSettle (HAProxy's master re-executing on a reload) is no problem;
// one that never does is reported as missing once socketSettle has passed.
func TestCheckSocketWaitsOutAReload(t *testing.T) {
	dir := t.TempDir()
	late := filepath.Join(dir, "master.sock")
	listening := make(chan net.Listener, 1)
	timer := time.AfterFunc(400*time.Millisecond, func() {
		ln, err := net.Listen("unix", late)
		if err != nil {
			t.Error(err)
		}
		listening <- ln
	})
	defer timer.Stop()
	if p := checkSocket(context.Background(), "master socket", late, "fix"); p != nil {
		t.Fatalf("a socket back within %v was reported: %v", socketSettle, p)
	}
	(<-listening).Close()

	old := socketSettle
	socketSettle = 300 * time.Millisecond
	t.Cleanup(func() { socketSettle = old })
	start := time.Now()
	p := checkSocket(context.Background(), "master socket", filepath.Join(dir, "never.sock"), "fix")
	if p == nil || !strings.Contains(p.Err.Error(), "no such socket") {
		t.Fatalf("missing socket: got %v", p)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("missing socket reported after %v, before the settle time", d)
	}
}
