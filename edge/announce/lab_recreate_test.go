package announce

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLabInterfaceRecreated: Run serves an interface that does not exist
// yet once it appears, and serves it again after it was deleted and
// created anew (a new index and MAC). A veth pair inside one edge host
// stands in: the announcer serves lb0, arping asks through its peer lb0p.
func TestLabInterfaceRecreated(t *testing.T) {
	e := newLab(t, "edge1")
	vip := netip.MustParseAddr("10.99.0.200")
	var logs lockedBuffer
	a := NewResponder(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	a.SetLeases(leaseFor(vip, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Do("edge1", func() error { a.Run(ctx, "lb0"); return nil }) }()
	t.Cleanup(func() { cancel(); <-done })

	create := func(mac string) {
		e.mustExec(t, "edge1", "ip", "link", "add", "lb0", "address", mac, "type", "veth", "peer", "name", "lb0p", "address", "02:ed:00:00:00:fe")
		e.mustExec(t, "edge1", "ip", "addr", "add", "10.99.0.1/24", "dev", "lb0")
		e.mustExec(t, "edge1", "ip", "addr", "add", "10.99.0.2/24", "dev", "lb0p")
		e.mustExec(t, "edge1", "ip", "link", "set", "lb0", "up")
		e.mustExec(t, "edge1", "ip", "link", "set", "lb0p", "up")
	}
	answeredBy := func(mac string) func() bool {
		return func() bool {
			out, _ := e.Exec("edge1", "arping", "-c", "1", "-W", "0.2", "-w", "1", "-i", "lb0p", vip.String())
			return strings.Contains(strings.ToLower(out), "bytes from "+mac)
		}
	}
	wait.ForBool(t, 5*time.Second, "Run to find lb0 missing", func() bool {
		return strings.Contains(logs.String(), "no such network interface")
	})
	create("02:ed:00:00:00:01")
	wait.ForBool(t, 15*time.Second, "arping answered from lb0 created after Run started", answeredBy("02:ed:00:00:00:01"))
	e.mustExec(t, "edge1", "ip", "link", "del", "lb0")
	create("02:ed:00:00:00:02")
	start := time.Now()
	again := answeredBy("02:ed:00:00:00:02")
	if err := wait.UntilEvery(15*time.Second, measurePoll, "arping answered from lb0 created again", func() (bool, string) { return again(), "" }); err != nil {
		t.Fatal(err)
	}
	t.Logf("answering on the re-created interface %v after it came back", time.Since(start).Round(time.Millisecond))
}
