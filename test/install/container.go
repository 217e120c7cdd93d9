package install

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// cgroupRoots are the host's cgroup hierarchies a container gets its own
// directory in (../shared/NSPAWN.md: without it, containers share one
// cgroup and stopping one stops the other's services).
var cgroupRoots = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}

// bootTimeout bounds a boot until `systemctl is-system-running` (~1 s idle).
const bootTimeout = 60 * time.Second

// Container is a booted Debian with systemd as PID 1.
type Container struct {
	Name  string
	nspwn *exec.Cmd
	init  int // the container's PID 1, as the host sees it
	log   *syncBuffer
	cg    []string
}

// boot starts systemd-nspawn -b over RootfsDir (--volatile=overlay: every
// change is discarded) in the network namespace netns, with binds
// (host:container, read-only) and registers its teardown.
func boot(t *testing.T, name, netns string, binds ...string) *Container {
	t.Helper()
	c := &Container{Name: name, log: &syncBuffer{}}
	t.Cleanup(c.stop)
	for _, r := range cgroupRoots {
		if _, err := os.Stat(r); err != nil {
			continue
		}
		d := filepath.Join(r, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("cgroup %s: %v", d, err)
		}
		c.cg = append(c.cg, d)
	}
	var procs strings.Builder
	for _, d := range c.cg {
		fmt.Fprintf(&procs, "echo $$ > %s/cgroup.procs; ", d)
	}
	args := []string{"-b", "-D", RootfsDir, "--volatile=overlay", "-M", name,
		"--network-namespace-path=/run/netns/" + netns, "--register=no", "--keep-unit", "--console=read-only",
		// A host's root has CAP_NET_ADMIN (edged's VIPs on lo); nspawn grants it
		// with --private-network but not with a namespace path.
		"--capability=CAP_NET_ADMIN"}
	for _, b := range binds {
		args = append(args, "--bind-ro="+b)
	}
	c.nspwn = exec.Command("sh", append([]string{"-c", procs.String() + `exec systemd-nspawn "$@"`, "sh"}, args...)...)
	// Pure cgroup v2, as on a Debian 12 host; /proc/sys/net writable as on a
	// host (nspawn does that for --private-network only), so the package's
	// sysctl drop-in applies: it is the container's own network namespace.
	c.nspwn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1", "SYSTEMD_NSPAWN_API_VFS_WRITABLE=network")
	c.nspwn.Stdout, c.nspwn.Stderr = c.log, c.log
	c.nspwn.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.nspwn.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	if err := wait.UntilEvery(bootTimeout, 200*time.Millisecond, name+" PID 1", func() (bool, string) {
		c.init = childNamed(c.nspwn.Process.Pid, "systemd")
		return c.init != 0 && exec.Command("nsenter", "-t", strconv.Itoa(c.init), "-m", "test", "-S", "/run/systemd/private").Run() == nil,
			tail(c.log.String(), 1500)
	}); err != nil {
		// Nothing of edged's is involved yet: the machine cannot boot a container.
		t.Skipf("this machine cannot boot a systemd container (systemd-nspawn): %v", err)
	}
	out, err := c.Exec("systemctl", "is-system-running", "--wait")
	if err != nil && strings.TrimSpace(out) != "degraded" {
		t.Skipf("this machine cannot boot a systemd container: %s: systemctl is-system-running: %v: %s\n%s", name, err, out, tail(c.log.String(), 3000))
	}
	if strings.TrimSpace(out) == "degraded" {
		failed, _ := c.Exec("systemctl", "--failed", "--no-legend")
		t.Logf("%s booted degraded: %s", name, failed)
	}
	return c
}

// childNamed returns the PID of parent's child whose comm is name, or 0.
func childNamed(parent int, name string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == name {
			return pid
		}
	}
	return 0
}

// containerEnv is the environment of commands run inside: a root login's,
// not the test's.
var containerEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "TERM=dumb"}

// Exec runs a command in every namespace of the container and returns its
// combined output.
func (c *Container) Exec(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(c.init), "-a", "--"}, args...)...)
	cmd.Env = containerEnv
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Script runs a shell script as root in dir, with `set -eux`, and
// returns its output.
func (c *Container) Script(dir, script string) (string, error) {
	return c.Exec("bash", "-c", "set -euxo pipefail; cd "+dir+"\n"+script)
}

// must is Exec that fails the test.
func (c *Container) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.Exec(args...)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", c.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// WriteFile writes data to path inside the container (through its PID 1's
// root, so the overlay sees it), with mode.
func (c *Container) WriteFile(path string, data []byte, mode os.FileMode) error {
	p := fmt.Sprintf("/proc/%d/root%s", c.init, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// ReadFile reads path inside the container.
func (c *Container) ReadFile(path string) ([]byte, error) {
	return os.ReadFile(fmt.Sprintf("/proc/%d/root%s", c.init, path))
}

// stop powers the container off, kills nspawn if it does not exit, and
// removes its cgroups.
func (c *Container) stop() {
	if c.nspwn == nil || c.nspwn.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { c.nspwn.Wait(); close(done) }()
	if c.init != 0 {
		_, _ = c.Exec("systemctl", "poweroff", "--no-block")
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.nspwn.Process.Kill()
		if c.init != 0 {
			_ = syscall.Kill(c.init, syscall.SIGKILL)
		}
		<-done
	}
	for _, d := range c.cg {
		removeCgroup(d)
	}
}

// removeCgroup removes d and the sub-cgroups systemd made in it, deepest
// first.
func removeCgroup(d string) {
	var dirs []string
	filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50 && os.Remove(dirs[i]) != nil; try++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// syncBuffer is nspawn's console log, written by its process and read by
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
