package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Check runs `haproxy -c` over the operator's files and candidate (a path
// holding the new edged file) and returns ErrValidate with HAProxy's output
// on failure.
func (p Paths) Check(ctx context.Context, candidate string) error {
	args := []string{"-c", "-q"}
	for _, f := range p.OperatorConfigs {
		args = append(args, "-f", f)
	}
	args = append(args, "-f", candidate)
	out, err := exec.CommandContext(ctx, p.binary(), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", candidate, bytes.TrimSpace(out), errors.Join(ErrValidate, err))
	}
	return nil
}

// WriteChecked validates data as edged's file and only then replaces the
// live file atomically (temp file in the same directory, fsync, rename).
// On any error the live file is untouched.
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
