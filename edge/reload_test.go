package edge_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// logBuffer collects an appliance's logs; safe for its goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logger returns a logger writing into l at level (and to stderr with -v).
func (l *logBuffer) logger(level slog.Leveler) *slog.Logger {
	var w io.Writer = l
	if testing.Verbose() {
		w = io.MultiWriter(l, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// poolNames is the pool names in the replicated state.
func poolNames(app *edge.Appliance) []string {
	s := app.Store()
	if s == nil {
		return nil
	}
	pools, _ := s.PoolConfig()
	var names []string
	for _, p := range pools {
		names = append(names, p.Name)
	}
	return names
}

// TestReloadAppliesPoolsAndRefusesBadFile: Reload reads the file again; a
// new pool reaches the raft state and a new log level applies, a changed
// start-only setting is named in a warning, and a file the loader refuses
// keeps everything in force, with the error naming file, line and field.
func TestReloadAppliesPoolsAndRefusesBadFile(t *testing.T) {
	dir := shortDir(t)
	raftAddr := freeport.Addr(t)
	text := func(pools, extra string) string { return singleHostYAML(dir, raftAddr, pools, extra) }
	cfg := mustLoad(t, dir, text("", "metrics: {address: \"127.0.0.1:0\"}\n"))
	var logs logBuffer
	level := new(slog.LevelVar)
	app := edge.New(cfg, logs.logger(level), nil)
	app.UseLogLevel(level)
	runApp(t, app)
	wait.ForBool(t, 15*time.Second, "pools [primary] in raft", func() bool { return slices.Equal(poolNames(app), []string{"primary"}) })

	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfg.Path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(text("  - name: extra\n    addresses: [10.5.0.0/24]\n", "metrics: {address: \"127.0.0.1:1\"}\nlog: {level: debug}\n"))
	if err := app.Reload(); err != nil {
		t.Fatalf("Reload of a good file: %v", err)
	}
	wait.For(t, 5*time.Second, "pools [primary extra] in raft", func() (bool, string) {
		got := poolNames(app)
		return slices.Equal(got, []string{"primary", "extra"}), fmt.Sprint(got)
	})
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level after reload = %v, want DEBUG", level.Level())
	}
	if !strings.Contains(logs.String(), "needs a restart to apply\" fields=metrics.address") {
		t.Errorf("no restart warning naming metrics.address in:\n%s", logs.String())
	}
	waitMetric(t, app.Registry(), "edged_config_reload_total", map[string]string{"result": "success"}, 1)
	waitMetric(t, app.Registry(), "metallb_k8s_client_config_stale_bool", nil, 0)

	write(text("  - name: extra\n    addresses: [10.5.0.9 - 10.5.0.1]\n", ""))
	err := app.Reload()
	if want := cfg.Path + ":10: pools[1].addresses[0]"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Reload of a bad file = %v, want an error naming %s", err, want)
	}
	if !strings.Contains(logs.String(), "config reload refused") {
		t.Errorf("the refused reload was not logged:\n%s", logs.String())
	}
	waitMetric(t, app.Registry(), "edged_config_reload_total", map[string]string{"result": "failure"}, 1)
	// MetalLB's meaning: loaded once, stale while the latest load failed.
	waitMetric(t, app.Registry(), "metallb_k8s_client_config_loaded_bool", nil, 1)
	waitMetric(t, app.Registry(), "metallb_k8s_client_config_stale_bool", nil, 1)
	if got := poolNames(app); !slices.Equal(got, []string{"primary", "extra"}) {
		t.Errorf("pools after a refused reload = %v, want the previous [primary extra]", got)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level after a refused reload = %v, want DEBUG still", level.Level())
	}
	write(text("  - name: extra\n    addresses: [10.5.0.0/24]\n", ""))
	if err := app.Reload(); err != nil {
		t.Fatalf("Reload of the good file again: %v", err)
	}
	waitMetric(t, app.Registry(), "metallb_k8s_client_config_stale_bool", nil, 0)
}
