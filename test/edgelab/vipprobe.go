package edgelab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goldentooth/edged/test/vipprobe"
)

// rtPriority is the SCHED_FIFO priority of the vipprobe processes: above
// every ordinary (SCHED_OTHER) process, edged, the apiserver and the test
// included, so a gap they measure is the network's and edged's, not a
// scheduling delay of the client or server; below the kernel's own
// real-time threads (99).
const rtPriority = "50"

// vipprobeStart bounds a vipprobe server's start (until it listens).
const vipprobeStart = 10 * time.Second

var (
	rtOnce sync.Once
	rtErr  error
)

// realtime prefixes args with chrt at rtPriority, or returns them as they
// are (and says so in the test log) where real-time scheduling is refused.
func (l *Lab) realtime(args ...string) []string {
	rtOnce.Do(func() {
		if out, err := exec.Command("chrt", "-f", rtPriority, "true").CombinedOutput(); err != nil {
			rtErr = fmt.Errorf("chrt -f %s: %v: %s", rtPriority, err, strings.TrimSpace(string(out)))
		}
	})
	if rtErr != nil {
		l.t.Logf("vipprobe runs at normal priority: %v", rtErr)
		return args
	}
	return append([]string{"chrt", "-f", rtPriority}, args...)
}

// lineWriter calls fn with each complete line written to it (without the
// newline); fn must not keep the slice.
type lineWriter struct {
	buf []byte
	fn  func(line []byte)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.fn(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// vipprobe is the vipprobe command, built once per test process.
func (l *Lab) vipprobe() string { return goBuild(l.t, "./test/vipprobe/cmd/vipprobe") }

// serveVIPProcesses is ServeVIP with a vipprobe server process per edge
// host; it returns once every one listens.
func (l *Lab) serveVIPProcesses(ip netip.Addr) error {
	bin := l.vipprobe()
	addr := netip.AddrPortFrom(ip, ProbePort)
	for _, e := range l.Edges {
		ready := make(chan struct{})
		var once sync.Once
		out := &lineWriter{fn: func(line []byte) {
			if string(line) == "listening" {
				once.Do(func() { close(ready) })
			}
		}}
		logPath := filepath.Join(l.dir, fmt.Sprintf("vipprobe-%s-%s.log", e.Name, ip))
		p, err := l.startPiped(e.Host, logPath, out, l.realtime(bin, "serve", "-listen", addr.String(), "-name", e.Name)...)
		if err != nil {
			return err
		}
		select {
		case <-ready:
		case <-p.done:
			return fmt.Errorf("vipprobe serve %s in %s exited: %v: %s", addr, e.NS, p.err, tail(logPath, 500))
		case <-time.After(vipprobeStart):
			return fmt.Errorf("vipprobe serve %s in %s: not listening after %v: %s", addr, e.NS, vipprobeStart, tail(logPath, 500))
		}
	}
	return nil
}

// startProbeProcess is StartProbe as a vipprobe client process in the
// client host; its results are decoded from its stdout as they come.
func (l *Lab) startProbeProcess(url string, interval time.Duration) (*Probe, error) {
	bin := l.vipprobe()
	p := &Probe{target: url, stop: make(chan struct{}), done: make(chan struct{})}
	out := &lineWriter{fn: func(line []byte) {
		var r Result
		if err := json.Unmarshal(line, &r); err != nil {
			r = Result{Start: time.Now(), End: time.Now(), Err: fmt.Sprintf("vipprobe output %q: %v", line, err)}
		}
		p.record(r)
	}}
	logPath := filepath.Join(l.dir, "vipprobe-client.log")
	proc, err := l.startPiped(l.Client, logPath, out, l.realtime(bin, "get", "-url", url, "-every", interval.String())...)
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(p.done)
		select {
		case <-p.stop:
		case <-proc.done:
			l.t.Logf("vipprobe get %s exited early: %v: %s", url, proc.err, tail(logPath, 500))
			return
		}
		// SIGTERM: it waits for its requests in flight and writes them.
		if proc.Signal(syscall.SIGTERM) == nil && proc.Wait(2*vipprobe.Timeout) != nil {
			proc.Kill()
		}
	}()
	l.onClose(p.Stop)
	return p, nil
}

// TimerFloor runs `vipprobe timer` in the client host at the probe's
// priority for d and returns how late each of its wake-ups every apart came
// (vipprobe.TimerLateness): the floor under every gap the probe measures
// on this machine at this moment.
func (l *Lab) TimerFloor(every, d time.Duration) ([]time.Duration, error) {
	bin := l.vipprobe()
	out, err := l.Exec(l.Client, l.realtime(bin, "timer", "-every", every.String(), "-for", d.String())...)
	if err != nil {
		return nil, fmt.Errorf("vipprobe timer: %w: %s", err, out)
	}
	var late []time.Duration
	if err := json.Unmarshal([]byte(out), &late); err != nil {
		return nil, fmt.Errorf("vipprobe timer output: %w", err)
	}
	return late, nil
}
