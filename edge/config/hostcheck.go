package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HostProblem is one thing on this host that keeps `edged run`, as the
// user running the check, from driving HAProxy: what failed and what to do.
type HostProblem struct {
	What string // e.g. "master socket /run/haproxy-master.sock"
	Err  error
	Fix  string
}

// Error implements error.
func (p HostProblem) Error() string {
	s := fmt.Sprintf("%s: %v", p.What, p.Err)
	if p.Fix != "" {
		s += "\n  fix: " + p.Fix
	}
	return s
}

// hostCheckTimeout bounds each socket dial and `haproxy -c`: the unit runs
// the check as ExecStartPre, and a hung check must not eat the start
// timeout.
const hostCheckTimeout = 10 * time.Second

// CheckHost checks what `edged run` needs from this host, as the user and
// under the sandbox the check runs in (the unit runs it as ExecStartPre,
// so both are the daemon's): HAProxy's master and stats sockets accept a
// connection, edged's HAProxy directories are writable, and `haproxy -c`
// accepts the operator's file (readable certificates, regexes that
// compile). It returns every problem found, each with its fix.
func (c *Config) CheckHost(ctx context.Context) []HostProblem {
	h := c.HAProxy
	var out []HostProblem
	add := func(p *HostProblem) {
		if p != nil {
			out = append(out, *p)
		}
	}
	add(checkSocket(ctx, "master socket", h.MasterSocket,
		"start HAProxy with `-S "+h.MasterSocket+",mode,660,group,haproxy` (the edged package's "+
			"/lib/systemd/system/haproxy.service.d/edged.conf does: systemctl daemon-reload && systemctl restart haproxy)"))
	add(checkSocket(ctx, "stats socket", h.StatsSocket,
		"in the global section of "+h.OperatorFile+": `stats socket "+h.StatsSocket+" mode 660 level admin`"+
			" (Debian's default; /run/haproxy is group haproxy and setgid, so the socket is too), then systemctl reload haproxy"))
	for _, d := range []string{filepath.Dir(h.ConfigFile), h.CertDir} {
		add(checkWritable(d))
	}
	for _, f := range nonlocalBind {
		add(checkSysctl(f))
	}
	add(checkOperatorFile(ctx, h.Binary, h.OperatorFile, h.ConfigFile))
	return out
}

// nonlocalBind are the sysctls that let HAProxy bind a VIP this host does
// not hold: every host binds every VIP, so without them every reload on a
// host that does not announce fails ("cannot bind socket") and edged never
// becomes ready there.
var nonlocalBind = []string{"/proc/sys/net/ipv4/ip_nonlocal_bind", "/proc/sys/net/ipv6/ip_nonlocal_bind"}

// checkSysctl reports a nonlocal-bind sysctl that is off; a missing one
// (IPv6 disabled) is no problem.
func checkSysctl(path string) *HostProblem {
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	key := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
	return &HostProblem{What: "sysctl " + key, Err: fmt.Errorf("is %s: HAProxy cannot bind the VIPs another host announces", strings.TrimSpace(string(b))),
		Fix: "sysctl --system (the package's /etc/sysctl.d/99-edged.conf sets it to 1)"}
}

// socketSettle is how long a refused or missing socket is tried again
// before it counts as a problem: HAProxy's master re-executes itself on
// every reload (`systemctl reload haproxy` returns before it has), so its
// master socket is briefly missing or refused; a check run right after a
// reload (the docs' install steps, ExecStartPre after an operator's
// reload) must not fail on that.
var socketSettle = 3 * time.Second

// socketRetry is how often a refused or missing socket is dialled again
// within socketSettle.
const socketRetry = 100 * time.Millisecond

// checkSocket dials a unix socket and explains a refusal. A refused or
// missing socket is dialled again for socketSettle (or until ctx ends); a
// permission error is reported at once.
func checkSocket(ctx context.Context, what, path, fix string) *HostProblem {
	what = what + " " + path
	d := net.Dialer{Timeout: hostCheckTimeout}
	var err error
retry:
	for deadline := time.Now().Add(socketSettle); ; {
		var conn net.Conn
		if conn, err = d.DialContext(ctx, "unix", path); err == nil {
			conn.Close()
			return nil
		}
		transient := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
		if !transient || time.Now().Add(socketRetry).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			break retry
		case <-time.After(socketRetry):
		}
	}
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return &HostProblem{What: what, Err: fmt.Errorf("permission denied for %s (socket %s)", whoAmI(), describe(path)), Fix: fix +
			"; and make sure the user is in group haproxy (`adduser edged haproxy`, done by the package)"}
	case errors.Is(err, syscall.ENOENT):
		return &HostProblem{What: what, Err: errors.New("no such socket: HAProxy is not running or does not create it"), Fix: "systemctl start haproxy; " + fix}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &HostProblem{What: what, Err: errors.New("connection refused: nothing listens on it (HAProxy stopped?)"), Fix: "systemctl restart haproxy"}
	}
	return &HostProblem{What: what, Err: err, Fix: fix}
}

// checkWritable reports a directory edged writes into that it cannot. A
// missing directory is fine when edged can create it: its nearest existing
// parent is checked instead.
func checkWritable(dir string) *HostProblem {
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	err := unix.Access(dir, unix.W_OK|unix.X_OK)
	if err == nil {
		return nil
	}
	p := &HostProblem{What: "directory " + dir, Err: fmt.Errorf("not writable by %s: %w", whoAmI(), err)}
	switch {
	case errors.Is(err, syscall.ENOENT):
		p.Fix = fmt.Sprintf("install -d -o edged -g edged -m 0750 %s", dir)
	case errors.Is(err, syscall.EROFS):
		p.Fix = "add it to ReadWritePaths= in a drop-in for edged.service (ProtectSystem=strict makes everything else read-only)"
	default:
		p.Fix = fmt.Sprintf("chown edged:edged %s", dir)
	}
	return p
}

// checkOperatorFile runs `haproxy -c` over the operator's file (and
// edged's, once it exists) as this user: what edged runs before every
// reload. A certificate only root can read, or a sandbox HAProxy cannot
// work in, fails here instead of at every apply.
func checkOperatorFile(ctx context.Context, binary, operator, own string) *HostProblem {
	ctx, cancel := context.WithTimeout(ctx, hostCheckTimeout)
	defer cancel()
	args := []string{"-c", "-f", operator}
	if _, err := os.Stat(own); err == nil {
		args = append(args, "-f", own)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	// The daemon's working directory under systemd. HAProxy returns to its
	// starting directory after parsing and fails where it cannot (running
	// `runuser -u edged` from root's home).
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	what := "haproxy -c " + strings.Join(args[1:], " ")
	msg := strings.TrimSpace(string(out))
	fix := "fix the file HAProxy names above"
	switch {
	case strings.Contains(msg, "ermission denied"):
		fix = "edged runs `haproxy -c` as " + whoAmI() + " before every reload: make each file the config names readable " +
			"by group haproxy (e.g. chgrp haproxy /etc/ssl/private/site.pem && chmod 0640 /etc/ssl/private/site.pem)"
	case strings.Contains(msg, "jit"):
		fix = "HAProxy's PCRE2 JIT needs writable+executable memory: do not set MemoryDenyWriteExecute=yes for edged.service"
	}
	return &HostProblem{What: what, Err: fmt.Errorf("%v:\n%s", err, indent(msg)), Fix: fix}
}

// WriteHostProblems prints the result of CheckHost.
func WriteHostProblems(w io.Writer, probs []HostProblem) {
	if len(probs) == 0 {
		fmt.Fprintf(w, "host: HAProxy's sockets, edged's directories and the operator's file are usable by %s\n", whoAmI())
		return
	}
	for _, p := range probs {
		fmt.Fprintf(w, "host: %s\n", p.Error())
	}
}

// whoAmI names the running user and its groups for messages.
func whoAmI() string {
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("uid %d", os.Getuid())
	}
	gids, _ := u.GroupIds()
	var names []string
	for _, g := range gids {
		if gr, err := user.LookupGroupId(g); err == nil {
			names = append(names, gr.Name)
		} else {
			names = append(names, g)
		}
	}
	return fmt.Sprintf("user %s (groups %s)", u.Username, strings.Join(names, ","))
}

// describe shows a file's mode and owner, as ls -l would.
func describe(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Mode().String()
	}
	owner, group := fmt.Sprint(st.Uid), fmt.Sprint(st.Gid)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("%s %s:%s", fi.Mode(), owner, group)
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
