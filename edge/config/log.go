package config

import "log/slog"

// DefaultLogLevel is the level of edged's logs unless log.level or
// --log-level says otherwise.
const DefaultLogLevel = "info"

// Log configures edged's own logs. A SIGHUP applies a changed level at
// once.
type Log struct {
	// Level is debug, info, warn or error (slog's names).
	Level string `yaml:"level"`
}

// SlogLevel is Level as a slog.Level (info when empty); Load has checked
// that it parses.
func (l Log) SlogLevel() slog.Level {
	var v slog.Level
	_ = v.UnmarshalText([]byte(l.Level))
	return v
}

// checkLog refuses a log level slog does not know; empty (a Config built
// in code) is info.
func (l *loaded) checkLog() error {
	lv := l.cfg.Log.Level
	if lv == "" {
		return nil
	}
	var v slog.Level
	if err := v.UnmarshalText([]byte(lv)); err != nil {
		return l.failRoot("log.level", []any{"log", "level"}, "%q: want debug, info, warn or error", lv)
	}
	return nil
}
