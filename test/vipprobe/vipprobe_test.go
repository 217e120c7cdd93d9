package vipprobe

import (
	"bufio"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// serveLoopback starts NewServer(name) on a free loopback port and returns
// its URL.
func serveLoopback(t *testing.T, name string) string {
	t.Helper()
	addr := netip.MustParseAddrPort(freeport.Addr(t))
	ln, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(name)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return URL(addr.Addr(), addr.Port())
}

func TestGet(t *testing.T) {
	url := serveLoopback(t, "e1")
	r := Get(NewClient(nil), url)
	if !r.OK || r.Host != "e1" || r.Err != "" || r.End.Before(r.Start) {
		t.Fatalf("GET %s: %+v, want OK from e1", url, r)
	}
	// Nothing listens on a fresh free port: refused, with the reason.
	addr := netip.MustParseAddrPort(freeport.Addr(t))
	r = Get(NewClient(nil), URL(addr.Addr(), addr.Port()))
	if r.OK || r.Err == "" || r.Host != "" {
		t.Fatalf("GET of a closed port: %+v, want a failure with its reason", r)
	}
}

// TestLoopWaitsForRequestsInFlight: Loop returns only after every request
// it sent has been recorded, so a stopped probe loses no result.
func TestLoopWaitsForRequestsInFlight(t *testing.T) {
	stop, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var sent, recorded atomic.Int32
	go func() {
		defer close(done)
		Loop(stop, time.Millisecond, func() Result {
			sent.Add(1)
			<-release
			return Result{OK: true}
		}, func(Result) { recorded.Add(1) })
	}()
	wait.ForBool(t, 10*time.Second, "3 requests in flight", func() bool { return sent.Load() >= 3 })
	close(stop)
	close(release)
	<-done
	if s, r := sent.Load(), recorded.Load(); s != r {
		t.Fatalf("Loop returned with %d of %d requests recorded", r, s)
	}
}

// TestCommand runs the vipprobe command as edgelab does: serve says when
// it listens, get writes one JSON Result per line and, on SIGTERM, the
// requests still in flight before it exits 0.
func TestCommand(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "vipprobe")
	build := exec.Command("go", "build", "-o", bin, "./test/vipprobe/cmd/vipprobe")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	addr := freeport.Addr(t)
	serve, _ := start(t, bin, "serve", "-listen", addr, "-name", "e7")
	if line, err := serve.ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("serve printed %q, %v; want listening", line, err)
	}
	stdout, get := start(t, bin, "get", "-url", "http://"+addr+"/", "-every", "5ms")
	lines := bufio.NewScanner(stdout)
	var results []Result
	for len(results) < 5 && lines.Scan() {
		var r Result
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		if !r.OK || r.Host != "e7" || r.Start.IsZero() {
			t.Fatalf("result %+v, want OK from e7", r)
		}
		results = append(results, r)
	}
	if len(results) < 5 {
		t.Fatalf("get stopped after %d results: %v", len(results), lines.Err())
	}
	if err := get.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		var r Result
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatalf("line after SIGTERM %q: %v", lines.Text(), err)
		}
	}
	if err := get.Wait(); err != nil {
		t.Fatalf("get after SIGTERM: %v, want exit 0", err)
	}
}

// start starts bin with args, killed at the end of the test (unless the
// test waited for it), and returns its stdout and the command.
func start(t *testing.T, bin string, args ...string) (*bufio.Reader, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	})
	return bufio.NewReader(out), cmd
}

// TestTimerLateness: one sample per interval, none early (an absolute
// deadline is never reported before it passed).
func TestTimerLateness(t *testing.T) {
	late, err := TimerLateness(time.Millisecond, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(late) != 50 {
		t.Fatalf("%d samples in 50 ms at 1 ms, want 50", len(late))
	}
	for i, l := range late {
		if l < 0 {
			t.Errorf("wake-up %d came %v early", i, -l)
		}
	}
}
