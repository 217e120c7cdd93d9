package edge_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/test/freeport"
)

// TestRunStopsWhatItStarted: when Run fails before serving (raft, the
// admin socket or the metrics address cannot be opened) it returns the
// error and has closed the announcer it started, with its leases withdrawn.
func TestRunStopsWhatItStarted(t *testing.T) {
	tests := []struct {
		name  string
		want  string // in Run's error
		spoil func(t *testing.T, cfg *config.Config)
	}{
		{"raft data dir is a file", "open raft", func(t *testing.T, cfg *config.Config) {
			cfg.Node.DataDir = regularFile(t)
		}},
		{"admin socket under a file", "admin socket", func(t *testing.T, cfg *config.Config) {
			cfg.Node.AdminSocket = filepath.Join(regularFile(t), "admin.sock")
		}},
		{"metrics address in use", "address already in use", func(t *testing.T, cfg *config.Config) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			cfg.Metrics.Address = l.Addr().String()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, shortDir(t), 0, []string{freeport.Addr(t)}, "127.0.0.1:0")
			tc.spoil(t, cfg)
			ann := newFakeAnnouncer(cfg.Node.Name)
			app := edge.New(cfg, quietLogger(t), ann)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.want)
			}
			ann.mu.Lock()
			defer ann.mu.Unlock()
			if !ann.started || !ann.closed || len(ann.open) > 0 {
				t.Errorf("announcer after Run failed: started %t, closed %t, announcing %v; want started, closed, none",
					ann.started, ann.closed, ann.open)
			}
		})
	}
}

// regularFile returns the path of an empty regular file, where a
// directory is expected.
func regularFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
