package config

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about a config's content.
var ErrInvalid = errors.New("invalid config")

// Error is a problem at one place of a config (or manifest) file.
type Error struct {
	File  string
	Line  int    // 0 when the file could not be read at all
	Field string // the field path, e.g. pools[1].addresses[0]
	Msg   string
}

// Error implements error: "FILE:LINE: FIELD: MSG" (without ":LINE" when
// the line is unknown, as for objects read from the cluster).
func (e *Error) Error() string {
	switch {
	case e.Line == 0 && e.Field == "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line == 0:
		// An object read from the cluster has no line to point at.
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	case e.Field == "":
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Unwrap lets callers test errors.Is(err, ErrInvalid).
func (e *Error) Unwrap() error { return ErrInvalid }
