package failover

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/goldentooth/edged/test/edgelab"
	"github.com/goldentooth/edged/test/wait"
)

// vrrp is one keepalived setup: every edge host runs keepalived (VRRP
// subsystem only) with unicast peers, all in state BACKUP with nopreempt, so
// a host that comes back does not take the VIP back (no second failover).
type vrrp struct {
	l       *edgelab.Lab
	name    string
	version int
	advert  string
	vip     netip.Addr
	vrid    int
	procs   map[*edgelab.Edge]*edgelab.Proc
	dir     string
	// trackHAProxy adds a track_script that fails while the host's HAProxy
	// is gone (keepalived's track_process cannot be used in a network
	// namespace: the kernel's process connector exists only in the initial
	// one, keepalived logs "Failed to set/clear process event listen").
	trackHAProxy bool
}

func newVRRP(l *edgelab.Lab, name string, version int, advert string, vip netip.Addr, vrid int) *vrrp {
	return &vrrp{l: l, name: name, version: version, advert: advert, vip: vip, vrid: vrid,
		procs: map[*edgelab.Edge]*edgelab.Proc{}, dir: filepath.Join(l.Dir(), "keepalived-"+name)}
}

func (v *vrrp) hostDir(e *edgelab.Edge) string { return filepath.Join(v.dir, e.Name) }

func (v *vrrp) config(i int, e *edgelab.Edge) string {
	var peers []string
	for _, p := range v.l.Edges {
		if p != e {
			peers = append(peers, p.Addr.String())
		}
	}
	script, track := "", ""
	if v.trackHAProxy {
		// The shortest interval keepalived accepts is 1 s.
		script = fmt.Sprintf(`vrrp_script chk_haproxy {
    script "%s"
    interval 1
    fall 1
    rise 2
}
`, v.checkScript(e))
		track = "\n    track_script {\n        chk_haproxy\n    }"
	}
	return fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_version %d
    script_user root
    enable_script_security
}
`+script+`vrrp_instance VI_%d {
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    unicast_src_ip %s
    unicast_peer {
        %s
    }
    virtual_ipaddress {
        %s/32 dev eth0
    }%s
}
`, e.ID, v.version, v.vrid, v.vrid, 200-10*i, v.advert, e.Addr, strings.Join(peers, "\n        "), v.vip, track)
}

// checkScript is the path of e's HAProxy check: it passes while a process
// of e's HAProxy (by its master socket on the command line) runs, as the
// usual `killall -0 haproxy` does on a host with one HAProxy.
func (v *vrrp) checkScript(e *edgelab.Edge) string {
	return filepath.Join(v.hostDir(e), "check-haproxy.sh")
}

// start starts keepalived on e (again after a crash).
func (v *vrrp) start(e *edgelab.Edge) error {
	i := 0
	for j, p := range v.l.Edges {
		if p == e {
			i = j
		}
	}
	d := v.hostDir(e)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	// A killed keepalived leaves its pid files behind, and its VRRP child may
	// linger as a zombie until PID 1 reaps it: keepalived would then
	// refuse to start ("daemon is already running"). Both were killed.
	for _, f := range []string{"keepalived.pid", "vrrp.pid"} {
		if err := os.Remove(filepath.Join(d, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if v.trackHAProxy {
		body := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/pgrep -f -- %q >/dev/null\n", "-S "+e.HAProxyPaths().Master.Address)
		if err := os.WriteFile(v.checkScript(e), []byte(body), 0o755); err != nil {
			return err
		}
	}
	conf := filepath.Join(d, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(v.config(i, e)), 0o644); err != nil {
		return err
	}
	p, err := v.l.Start(e.Host, filepath.Join(d, "keepalived.log"), "keepalived",
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "--dont-respawn",
		"-f", conf, "-p", filepath.Join(d, "keepalived.pid"), "-r", filepath.Join(d, "vrrp.pid"))
	if err != nil {
		return err
	}
	v.procs[e] = p
	return nil
}

// startAll starts keepalived everywhere and waits for one master.
func (v *vrrp) startAll() error {
	for _, e := range v.l.Edges {
		if err := v.start(e); err != nil {
			return err
		}
	}
	_, err := v.waitOneMaster(30 * time.Second)
	return err
}

// kill SIGKILLs keepalived's processes on e (the parent and its VRRP
// child, by the PIDs keepalived wrote), as a crash would.
func (v *vrrp) kill(e *edgelab.Edge) {
	if b, err := os.ReadFile(filepath.Join(v.hostDir(e), "vrrp.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if p := v.procs[e]; p != nil {
		p.Kill()
	}
}

// stopAll kills keepalived everywhere and removes the VIP it left behind.
func (v *vrrp) stopAll() {
	for _, e := range v.l.Edges {
		v.kill(e)
		_ = v.dropVIP(e)
	}
}

// dropVIP removes the VIP a killed keepalived left on eth0 (a rebooted
// host comes back without it).
func (v *vrrp) dropVIP(e *edgelab.Edge) error {
	nl := e.Netlink()
	link, err := nl.LinkByName("eth0")
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: v.vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := nl.AddrDel(link, a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// masters returns the hosts that have the VIP on eth0 (keepalived MASTER).
func (v *vrrp) masters() []*edgelab.Edge {
	var out []*edgelab.Edge
	for _, e := range v.l.Edges {
		nl := e.Netlink()
		link, err := nl.LinkByName("eth0")
		if err != nil {
			continue
		}
		addrs, err := nl.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.vip {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func (v *vrrp) waitOneMaster(d time.Duration) (*edgelab.Edge, error) {
	var ms []*edgelab.Edge
	if err := wait.Until(d, "one keepalived master", func() (bool, string) {
		ms = v.masters()
		return len(ms) == 1, ""
	}); err == nil {
		return ms[0], nil
	}
	return nil, fmt.Errorf("keepalived %s: %d masters after %v, want one\n%s", v.name, len(ms), d, v.logTails())
}

func (v *vrrp) logTails() string {
	var b strings.Builder
	for _, e := range v.l.Edges {
		data, _ := os.ReadFile(filepath.Join(v.hostDir(e), "keepalived.log"))
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		fmt.Fprintf(&b, "--- %s keepalived.log\n%s\n", e.ID, data)
	}
	return b.String()
}

// keepalivedBinary fails clearly when keepalived is missing.
func keepalivedBinary() error {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return fmt.Errorf("keepalived not installed (apt-get install -y keepalived): %w", err)
	}
	return nil
}
