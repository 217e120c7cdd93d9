package edgelab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a process the lab started inside a namespace. `ip netns exec`
// execs the command, so the PID is the command's own.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// group is set when the process leads its own process group (an
	// HAProxy master and its workers): signals go to the whole group.
	group bool
}

// Start starts args in h's namespace with output appended to logPath; Close
// kills it. The process also dies with the test binary (SIGKILL on parent
// death), so a crashed run leaves no process behind.
func (l *Lab) Start(h *Host, logPath string, args ...string) (*Proc, error) {
	return l.start(h, logPath, false, nil, args...)
}

// StartGroup is Start for a process that forks children of its own (an
// HAProxy master and its workers): it leads a new process group, and
// Signal and Kill reach the whole group by the leader's PID.
func (l *Lab) StartGroup(h *Host, logPath string, args ...string) (*Proc, error) {
	return l.start(h, logPath, true, nil, args...)
}

// startPiped is Start with the process's stdout written to out (its
// stderr still goes to logPath); the Proc is done once out has had all of
// it.
func (l *Lab) startPiped(h *Host, logPath string, out io.Writer, args ...string) (*Proc, error) {
	return l.start(h, logPath, false, out, args...)
}

func (l *Lab) start(h *Host, logPath string, group bool, out io.Writer, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if out != nil {
		cmd.Stdout = out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: group}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", args[0], h.NS, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{}), group: group}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// PID is the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig unless the process has exited; a group leader's whole
// group gets it.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errors.New("process already exited")
	default:
	}
	if p.group {
		return syscall.Kill(-p.PID(), sig)
	}
	return p.cmd.Process.Signal(sig)
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit and returns its exit error.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("pid %d still running after %v", p.PID(), d)
	}
}

// Kill sends SIGKILL and waits for the exit. A group leader's children
// are killed too, also when the leader has already exited.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
	if p.group {
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	}
}

// tail returns the last n bytes of the file at path (a log), or why not.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
