package edge_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/notify"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// hangingPart is a Part whose loop beats a heartbeat until hang is closed,
// then blocks (as a wedged loop would) until its context ends.
type hangingPart struct {
	hb   notify.Heartbeat
	hang chan struct{}
}

// hangingBound is the part's own liveness bound.
const hangingBound = 200 * time.Millisecond

func (p *hangingPart) Name() string { return "hanging-part" }
func (p *hangingPart) Ready() bool  { return true }
func (p *hangingPart) Alive() error { return p.hb.Check("its loop", hangingBound) }

func (p *hangingPart) Run(ctx context.Context, _ *raft.Store) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		p.hb.Beat()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-p.hang:
			<-ctx.Done()
			return nil
		}
	}
}

// TestWatchdogFollowsLiveness: a host cut off from its peers (no leader,
// never ready) still feeds the systemd watchdog, because its loops run;
// once a part's loop hangs, Alive names that part within the part's bound,
// and the pings stop, with an Error log naming it, so systemd restarts
// edged.
func TestWatchdogFollowsLiveness(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50 ms
	peers := freeport.Addrs(t, 3)       // edge2 and edge3 never run: no majority
	cfg := writeConfig(t, shortDir(t), 0, peers, "127.0.0.1:0")
	var logs logBuffer
	part := &hangingPart{hang: make(chan struct{})}
	app := edge.New(cfg, logs.logger(slog.LevelInfo), newFakeAnnouncer(cfg.Node.Name), part)
	runApp(t, app)

	wait.For(t, 10*time.Second, "3 WATCHDOG=1 pings while cut off", func() (bool, string) {
		n := ns.count("WATCHDOG=1")
		return n >= 3, fmt.Sprintf("%d pings", n)
	})
	if id, _ := app.Store().Leader(); id != "" {
		t.Fatalf("leader %q: the host was meant to be cut off from its peers", id)
	}
	if _, ok := ns.find("READY=1"); ok {
		t.Error("READY=1 without a raft leader")
	}
	if err := app.Alive(); err != nil {
		t.Fatalf("Alive while every loop runs: %v", err)
	}

	hungAt := time.Now()
	close(part.hang)
	var stuck error
	wait.ForBool(t, 5*time.Second, "Alive to name the hanging part", func() bool {
		stuck = app.Alive()
		return stuck != nil
	})
	if !strings.Contains(stuck.Error(), "hanging-part: its loop made no progress") {
		t.Errorf("Alive = %v, want it to name hanging-part", stuck)
	}
	if took := time.Since(hungAt); took > hangingBound+time.Second {
		t.Errorf("Alive noticed the hang after %v, want about its bound %v", took, hangingBound)
	}
	// Every check from now on withholds the ping: after three more Error
	// logs at most one ping already in flight may arrive.
	before, withheld := ns.count("WATCHDOG=1"), strings.Count(logs.String(), "watchdog ping withheld")
	wait.ForBool(t, 5*time.Second, "3 more withheld pings", func() bool {
		return strings.Count(logs.String(), "watchdog ping withheld") >= withheld+3
	})
	if after := ns.count("WATCHDOG=1"); after > before+1 {
		t.Errorf("%d pings arrived while the part was stuck", after-before)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"watchdog ping withheld") || !strings.Contains(logs.String(), "hanging-part") {
		t.Errorf("no Error log naming the hanging part:\n%s", logs.String())
	}
}
