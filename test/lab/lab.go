// Package lab builds throw-away network labs from network namespaces for
// tests: a bridge in its own namespace and host namespaces attached by veth
// pairs on a private IPv4 segment. It guarantees that the root namespace gets
// no address or route, and that Close (registered with t.Cleanup) kills every
// process it started and deletes every namespace it made. Labs of different
// test processes take turns (LockPath).
package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Prefix starts every namespace name this package creates; Sweep removes only these.
const Prefix = "edl-"

// ErrNotRoot is returned when the lab cannot be built without root.
var ErrNotRoot = errors.New("lab: needs root")

// Lab is a set of namespaces joined by one bridge.
type Lab struct {
	id     string
	prefix string
	nss    []string
	procs  []*exec.Cmd
	// release gives up this lab's share of the machine-wide lab lock
	// (exclusive.go).
	release func()
	// Hosts maps a host name to its namespace name.
	Hosts map[string]string
	// Addr maps a host name to its IPv4 address on the segment.
	Addr map[string]string
}

// New builds a lab with the given hosts on 10.77.0.0/24 and registers Close with t.Cleanup.
// It skips the test when not root.
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	return NewWithPrefix(t, Prefix, hosts...)
}

// NewWithPrefix is New with namespace names starting with prefix instead of
// Prefix, so one engineer's or package's labs never collide with another's.
// A prefix should itself start with Prefix so Sweep still finds it.
func NewWithPrefix(t testing.TB, prefix string, hosts ...string) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(ErrNotRoot.Error())
	}
	l := &Lab{id: fmt.Sprintf("%d", os.Getpid()%100000), prefix: prefix, Hosts: map[string]string{}, Addr: map[string]string{}}
	l.release = acquire(t)
	t.Cleanup(l.Close)
	br := l.ns("br")
	mustRun(t, "ip", "netns", "add", br)
	l.nss = append(l.nss, br)
	mustRun(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", br, "link", "set", "br0", "up")
	for i, h := range hosts {
		ns := l.ns(h)
		mustRun(t, "ip", "netns", "add", ns)
		l.nss = append(l.nss, ns)
		l.Hosts[h] = ns
		l.Addr[h] = fmt.Sprintf("10.77.0.%d", i+1)
		port := fmt.Sprintf("p%d", i)
		mustRun(t, "ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		mustRun(t, "ip", "-n", br, "link", "set", port, "master", "br0", "up")
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		mustRun(t, "ip", "-n", ns, "addr", "add", l.Addr[h]+"/24", "dev", "eth0")
	}
	return l
}

func (l *Lab) ns(h string) string { return l.prefix + l.id + "-" + h }

// Exec runs a command in host's namespace and returns its combined output.
func (l *Lab) Exec(host string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.Hosts[host]}, args...)...).CombinedOutput()
	return string(out), err
}

// Start starts a long-running command in host's namespace; Close kills it.
func (l *Lab) Start(host string, args ...string) (*exec.Cmd, error) {
	c := exec.Command("ip", append([]string{"netns", "exec", l.Hosts[host]}, args...)...)
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", args[0], host, err)
	}
	l.procs = append(l.procs, c)
	return c, nil
}

// Close kills every started process and deletes every namespace by name.
func (l *Lab) Close() {
	for _, c := range l.procs {
		if c.Process != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	for _, ns := range l.nss {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	if l.release != nil {
		l.release()
	}
}

// Sweep deletes stale namespaces with Prefix left by a crashed earlier run.
func Sweep() error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], Prefix) && !strings.HasPrefix(f[0], Prefix+fmt.Sprint(os.Getpid()%100000)+"-") {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	return nil
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Do runs fn on a locked OS thread inside host's namespace and restores the
// thread's namespace afterwards. Sockets opened in fn stay in host's namespace.
func (l *Lab) Do(host string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(l.Hosts[host])
	if err != nil {
		return fmt.Errorf("netns %s: %w", host, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter %s: %w", host, err)
	}
	defer netns.Set(orig)
	return fn()
}
