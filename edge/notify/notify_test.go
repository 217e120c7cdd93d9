package notify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a NOTIFY_SOCKET like systemd's and returns a channel of the
// datagrams sent to it.
func listen(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(out)
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case msg := <-ch:
		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no sd_notify message within 5s")
		return ""
	}
}

func TestReadyAndStopping(t *testing.T) {
	ch := listen(t)
	n := New(nil)
	if err := n.Ready("leader edge1, 2 services"); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, ch), "READY=1\nSTATUS=leader edge1, 2 services"; got != want {
		t.Errorf("ready message = %q, want %q", got, want)
	}
	if err := n.Status("not ready: haproxy: dial /run/haproxy/admin.sock: permission denied"); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, ch), "STATUS=not ready: haproxy: dial /run/haproxy/admin.sock: permission denied"; got != want {
		t.Errorf("status message = %q, want %q", got, want)
	}
	if err := n.Stopping(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, ch); got != "STOPPING=1" {
		t.Errorf("stopping message = %q, want STOPPING=1", got)
	}
}

func TestWatchdogPingsWhileAlive(t *testing.T) {
	ch := listen(t)
	t.Setenv("WATCHDOG_USEC", "40000") // 40 ms: pings every 20 ms
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- New(nil).Watchdog(ctx, func() error {
			if healthy.Load() {
				return nil
			}
			return errors.New("main loop stuck")
		})
	}()
	for i := 0; i < 3; i++ {
		if got := next(t, ch); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q, want WATCHDOG=1", i, got)
		}
	}
	// A stuck loop must stop the pings: none may arrive for several intervals.
	healthy.Store(false)
	drain(ch, 30*time.Millisecond) // a ping already in flight
	select {
	case msg := <-ch:
		if strings.Contains(msg, "WATCHDOG") {
			t.Fatalf("got %q while the main loop reported itself stuck", msg)
		}
	case <-time.After(150 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func drain(ch <-chan string, d time.Duration) {
	deadline := time.After(d)
	for {
		select {
		case <-ch:
		case <-deadline:
			return
		}
	}
}

func TestWatchdogDisabled(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := New(nil).Watchdog(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Error("Watchdog without WATCHDOG_USEC should return at once")
	}
}

func TestHeartbeat(t *testing.T) {
	var h Heartbeat
	if err := h.Check("loop", time.Millisecond); err != nil {
		t.Errorf("a loop that has not started yet: %v, want nil", err)
	}
	h.Beat()
	if err := h.Check("loop", time.Hour); err != nil {
		t.Errorf("fresh beat: %v, want nil", err)
	}
	h.last.Store(time.Now().Add(-time.Minute).UnixNano())
	if err := h.Check("loop", time.Second); err == nil || !strings.Contains(err.Error(), "loop made no progress") {
		t.Errorf("a beat a minute old with a 1s bound: %v, want an error naming the loop", err)
	}
}
