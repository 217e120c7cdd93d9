package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrValidate reports a config that `haproxy -c` refused.
var ErrValidate = errors.New("haproxy config validation failed")

// Paths locates the HAProxy binary, files and sockets edged works with.
type Paths struct {
	// Binary is the haproxy executable, default "haproxy" from PATH.
	Binary string
	// OperatorConfigs are the operator's own files, loaded before edged's
	// (they hold global, with the stats socket, and their own frontends).
	OperatorConfigs []string
	// Config is edged's own file, e.g. /etc/haproxy/edged.cfg.
	Config string
	// Master is the master CLI socket (haproxy -W -S PATH).
	Master Socket
	// Stats is the stats socket at level admin (runtime API).
	Stats Socket
}

func (p Paths) binary() string {
	if p.Binary == "" {
		return "haproxy"
	}
	return p.Binary
}

// ValidateError is a failed `haproxy -c`: HAProxy's alerts and the
// sections of edged's candidate file they point at. It wraps ErrValidate.
type ValidateError struct {
	// Output is HAProxy's [ALERT] lines (all output when it has none).
	Output string
	// Alerts maps each of edged's frontends and backends that the alerts
	// point at (by file:line or by name) to the alert lines about it;
	// empty when the alerts point elsewhere (e.g. the operator's file).
	Alerts map[string][]string
	err    error
}

// Sections returns the sections Alerts names, sorted.
func (e *ValidateError) Sections() []string { return slices.Sorted(maps.Keys(e.Alerts)) }

// Error implements error.
func (e *ValidateError) Error() string {
	return fmt.Sprintf("%v: %s", ErrValidate, e.Output)
}

// Unwrap returns ErrValidate and the exec error.
func (e *ValidateError) Unwrap() error { return e.err }

// Check runs `haproxy -c` over the operator's files and candidate (a path
// holding the new edged file) and returns a *ValidateError (ErrValidate)
// with HAProxy's alerts on failure.
func (p Paths) Check(ctx context.Context, candidate string) error {
	args := []string{"-c"} // not -q: it also silences the alerts
	for _, f := range p.OperatorConfigs {
		args = append(args, "-f", f)
	}
	args = append(args, "-f", candidate)
	out, err := exec.CommandContext(ctx, p.binary(), args...).CombinedOutput()
	if err != nil {
		return &ValidateError{Output: alerts(out), err: errors.Join(ErrValidate, err)}
	}
	return nil
}

// alerts keeps HAProxy's [ALERT] lines, or all output if there are none.
func alerts(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if strings.Contains(l, "[ALERT]") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return string(bytes.TrimSpace(out))
	}
	return strings.Join(keep, "\n")
}

var (
	fileLineRE = regexp.MustCompile(`\[([^\[\]]+):([0-9]+)\]`)
	quotedRE   = regexp.MustCompile(`'([^']+)'`)
)

// alertsBySection maps each frontend/backend section of data that a line
// of output points at (by "[file:line]" or by a quoted section name) to
// those lines, so a refusal can be reported to the owner of the section
// alone.
func alertsBySection(output, file string, data []byte) map[string][]string {
	lines := strings.Split(string(data), "\n")
	names := map[string]bool{}
	owner := make([]string, len(lines)+1) // owner[n]: section of line n (1-based)
	cur := ""
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			cur = ""
			if len(f) == 2 && (f[0] == "frontend" || f[0] == "backend") {
				cur = f[1]
				names[cur] = true
			}
		}
		owner[i+1] = cur
	}
	found := map[string][]string{}
	for _, l := range strings.Split(output, "\n") {
		hit := map[string]bool{}
		for _, m := range fileLineRE.FindAllStringSubmatch(l, -1) {
			n, err := strconv.Atoi(m[2])
			if m[1] == file && err == nil && n >= 1 && n < len(owner) && owner[n] != "" {
				hit[owner[n]] = true
			}
		}
		for _, m := range quotedRE.FindAllStringSubmatch(l, -1) {
			if names[m[1]] {
				hit[m[1]] = true
			}
		}
		for sec := range hit {
			found[sec] = append(found[sec], l)
		}
	}
	return found
}

// WriteChecked validates data as edged's file and only then replaces the
// live file atomically (temp file in the same directory, fsync, rename).
// On any error the live file is untouched; a validation failure is a
// *ValidateError naming the sections of data that HAProxy refused.
func (p Paths) WriteChecked(ctx context.Context, data []byte) error {
	dir := filepath.Dir(p.Config)
	tmp, err := os.CreateTemp(dir, ".edged-*.cfg")
	if err != nil {
		return fmt.Errorf("create temp config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write temp config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync temp config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temp config: %w", err)
	}
	if err := p.Check(ctx, tmp.Name()); err != nil {
		var ve *ValidateError
		if errors.As(err, &ve) {
			ve.Alerts = alertsBySection(ve.Output, tmp.Name(), data)
		}
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("chmod config: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.Config); err != nil {
		return fmt.Errorf("install config: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path with perm through a temp file and a
// rename, skipping the write when the file already holds data. It reports
// whether the file changed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".edged-*")
	if err != nil {
		return false, fmt.Errorf("create temp for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return false, fmt.Errorf("chmod %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("install %s: %w", path, err)
	}
	return true, nil
}
