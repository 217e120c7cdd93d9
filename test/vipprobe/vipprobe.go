// Package vipprobe is the lab's VIP client and server: one HTTP GET per
// request on a new connection, and a server that answers with its host's
// name. edgelab runs both inside the test process, or, where a measurement's
// floor must not include the test process's own scheduling and garbage
// collection (test/failover's gaps), as the vipprobe command
// (cmd/vipprobe) at real-time priority in the lab's namespaces.
//
// Result is the one record of a request, in both cases: the command writes
// one JSON Result per line.
package vipprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timeout bounds one request; a request lost in a failover is simply
// superseded by the next ones.
const Timeout = time.Second

// Result is one probe request.
type Result struct {
	// Start and End bound the request; End is when it failed or the
	// response body was read.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// OK is true for a 200 with a body.
	OK bool `json:"ok,omitempty"`
	// Host is the edge host that answered.
	Host string `json:"host,omitempty"`
	// Reset: the connection was reset (ECONNRESET) after the host
	// accepted it: the request was in flight when its VIP moved, and its
	// next packets reached the new holder, which has no such connection.
	// Layer 2 cannot avoid it; tests allow one per move.
	Reset bool `json:"reset,omitempty"`
	// Err says why a request failed (empty when OK), for failure reports.
	Err string `json:"err,omitempty"`
}

// NewClient is the probe's HTTP client: no keep-alive (each request is a
// new connection, so each is routed afresh), every request and dial bounded
// by Timeout. dial is nil for the current network namespace.
func NewClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	if dial == nil {
		// The transport does not cancel a dial when the request times out
		// (it may hand the connection to a later request), so bound it: a
		// SYN lost in a failover would otherwise wait the kernel's ~2 min.
		dial = (&net.Dialer{Timeout: Timeout}).DialContext
	}
	return &http.Client{Timeout: Timeout, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// URL is the address the probe GETs for ip:port.
func URL(ip netip.Addr, port uint16) string {
	return fmt.Sprintf("http://%s/", netip.AddrPortFrom(ip, port))
}

// Get is one probe request on a new connection.
func Get(client *http.Client, url string) Result {
	r := Result{Start: time.Now()}
	resp, err := client.Get(url)
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.OK = rerr == nil && resp.StatusCode == http.StatusOK && len(b) > 0
		r.Host = strings.TrimSpace(string(b))
		err = rerr
		if err == nil && !r.OK {
			err = fmt.Errorf("HTTP %d, %d bytes", resp.StatusCode, len(b))
		}
	}
	r.Reset = errors.Is(err, syscall.ECONNRESET)
	r.End = time.Now()
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// Loop calls send every interval, each in its own goroutine (a slow request
// never delays the next), and hands each Result to record, until stop is
// closed; it returns once the requests in flight have been recorded.
func Loop(stop <-chan struct{}, interval time.Duration, send func() Result, record func(Result)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			record(send())
		}()
	}
}

// Listen listens on TCP addr with IP_FREEBIND, as HAProxy binds VIPs it
// does not hold yet: the kernel delivers to it only while the host has the
// address on an interface.
func Listen(addr netip.AddrPort) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr.String())
}

// NewServer is the VIP server: every request is answered 200 with name and
// the connection closed.
func NewServer(name string) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, name)
		}),
		ReadHeaderTimeout: 2 * time.Second,
	}
}

// TimerLateness measures the machine's own floor under every gap a probe
// reports: for d, it sleeps on one locked OS thread to absolute deadlines
// every apart (clock_nanosleep, TIMER_ABSTIME, the kernel's
// high-resolution timer) and returns how late each wake-up came. Run at
// real-time priority, lateness is what the kernel and the hypervisor add
// (a non-preemptible kernel section, a descheduled vCPU), not Go's
// scheduler or other processes.
func TimerLateness(every, d time.Duration) ([]time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("clock_gettime: %w", err)
	}
	next, end := ts.Nano(), ts.Nano()+d.Nanoseconds()
	late := make([]time.Duration, 0, d/every+1)
	for next+every.Nanoseconds() <= end {
		next += every.Nanoseconds()
		want := unix.NsecToTimespec(next)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &want, nil)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EINTR) {
				return nil, fmt.Errorf("clock_nanosleep: %w", err)
			}
		}
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return nil, fmt.Errorf("clock_gettime: %w", err)
		}
		late = append(late, time.Duration(ts.Nano()-next))
	}
	return late, nil
}
