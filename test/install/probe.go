package install

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// probeEvery is the client's request interval: 50 requests a second, so a
// gap of 40 ms or more costs at least one request.
const probeEvery = 20 * time.Millisecond

// probeTimeout bounds one request (connect, send, first line).
const probeTimeout = 2 * time.Second

// probe requests http://target/ from a network namespace, a new connection
// per request, and counts answers that are not 200 with want in the body.
type probe struct {
	mu       sync.Mutex
	ok, fail int
	// reset counts the failures that were a connection already accepted
	// and then reset (ECONNRESET): the request was in flight when its VIP
	// moved between hosts, and its next packets reached the new holder,
	// which has no such connection. Layer 2 cannot avoid it (MetalLB and
	// keepalived cannot either); the test allows one per move.
	reset int
	errs  []string
	stop  chan struct{}
	done  chan struct{}
}

// counts is a probe's tally at one moment; reset is part of fail.
type counts struct{ ok, fail, reset int }

func (c counts) sub(o counts) counts { return counts{c.ok - o.ok, c.fail - o.fail, c.reset - o.reset} }

func (c counts) String() string {
	return fmt.Sprintf("%d failed of %d (%d reset in flight at a VIP move)", c.fail, c.ok+c.fail, c.reset)
}

// startProbe starts the probe in the namespace nsName. Its goroutine stays
// locked to a thread inside that namespace until stop, and the thread is
// discarded then, so no other goroutine ever runs in the namespace.
func startProbe(nsName, target, want string) (*probe, error) {
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(p.done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		h, err := netns.GetFromName(nsName)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		ready <- err
		if err != nil {
			return
		}
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			err := request(target, want)
			p.mu.Lock()
			if err == nil {
				p.ok++
			} else {
				p.fail++
				if errors.Is(err, errInFlight) && errors.Is(err, syscall.ECONNRESET) {
					p.reset++
				}
				if len(p.errs) < 20 {
					p.errs = append(p.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
			}
			p.mu.Unlock()
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("probe in %s: %w", nsName, err)
	}
	return p, nil
}

// request sends one HTTP/1.0 GET on a new connection.
func request(target, want string) error {
	c, err := net.DialTimeout("tcp", target, probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", target); err != nil {
		return fmt.Errorf("%w: %w", errInFlight, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errInFlight, err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	body.Write(buf[:n])
	if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), want) {
		return fmt.Errorf("HTTP %d %q", resp.StatusCode, body.String())
	}
	return nil
}

// errInFlight marks a failure after the connection was accepted.
var errInFlight = errors.New("after connect")

// now returns the tally so far.
func (p *probe) now() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return counts{p.ok, p.fail, p.reset}
}

// errors returns the first failures.
func (p *probe) errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

func (p *probe) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
