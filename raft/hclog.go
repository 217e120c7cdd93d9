package raft

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogFor adapts hashicorp/raft's hclog output to slog. raft's INFO lines
// (elections, snapshots) become Debug: they are detail, not events an
// operator acts on; WARN and ERROR keep their level.
func hclogFor(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Info,
		Output: &slogWriter{log: l.With("component", "hashicorp-raft")},
	})
}

type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	lvl := slog.LevelDebug
	switch {
	case bytes.Contains(p, []byte("[ERROR]")):
		lvl = slog.LevelError
	case bytes.Contains(p, []byte("[WARN]")):
		lvl = slog.LevelWarn
	}
	w.log.Log(context.Background(), lvl, line)
	return len(p), nil
}
