package install

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/lab"
	"github.com/goldentooth/edged/test/wait"
)

// envRun turns the test on where the rootfs is not cached yet (a clean CI
// machine: building it costs ~2 min of downloads): `make install-test`
// sets it.
const envRun = "EDGED_INSTALL_TEST"

// The two package versions: the install and the upgrade.
const (
	versionOld = "0.1.0~install1"
	versionNew = "0.1.0~install2"
)

// healthyTimeout bounds the wait for the group to see every host healthy
// again after a restart or an upgrade.
const healthyTimeout = 90 * time.Second

func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three Debian containers")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: systemd-nspawn, network namespaces")
	}
	if _, err := os.Stat(RootfsDir); err != nil && os.Getenv(envRun) == "" {
		t.Skipf("%s is not cached and %s is unset: run `make install-test` (builds the rootfs with debootstrap, ~2 min)", RootfsDir, envRun)
	}
	requireTools(t)
	began := time.Now()
	steps, err := readInstallDocs()
	if err != nil {
		t.Fatal(err)
	}
	ensureRootfs(t)
	debs := buildDebs(t, versionOld, versionNew)
	t.Logf("rootfs and packages ready after %s", fmtDur(time.Since(began)))

	srv := kubetest.Start(t)
	token := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)).BearerToken
	kns := srv.Namespace(t)
	api, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	l := lab.NewWithPrefix(t, lab.Prefix+"in", append(append([]string{}, edges...), "client", "pods")...)
	for _, e := range edges {
		stop, err := l.Forward(e, apiInLab, api.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	servePod(t, l)

	hosts := map[string]*Container{}
	for _, e := range edges {
		hosts[e] = boot(t, fmt.Sprintf("edl-in%d-%s", os.Getpid()%100000, e), l.Hosts[e],
			debs[0]+":/root/v1", debs[1]+":/root/v2")
	}
	t.Logf("three containers booted after %s", fmtDur(time.Since(began)))

	// 1. Every host: apt-get install the .deb.
	parallel(t, func(e string) error { return script(hosts[e], "/root/v1", steps.EveryHost) })
	// 2. One host: the CA and the certificates; the operator copies them.
	if err := script(hosts["edge1"], "/root", steps.OneHost); err != nil {
		t.Fatal(err)
	}
	copyCerts(t, hosts)
	// 3. Every host at once (a new group needs two hosts for a leader):
	// edged.yaml, kubeconfig, validate, start, status.
	parallel(t, func(e string) error {
		c := hosts[e]
		if err := operatorFrontend(c); err != nil {
			return err
		}
		if err := c.WriteFile("/root/inst/edged.yaml", []byte(edgedYAML(e, l.Addr)), 0o600); err != nil {
			return err
		}
		if err := c.WriteFile("/root/inst/kubeconfig", []byte(kubeconfig(token)), 0o600); err != nil {
			return err
		}
		return script(c, "/root/inst", steps.Start)
	})
	t.Logf("installed and started on three hosts after %s", fmtDur(time.Since(began)))
	for _, e := range edges {
		checkSandbox(t, hosts[e])
	}

	ctx := context.Background()
	vip := createService(ctx, t, srv.Client(t), kns, l.Addr["pods"])
	target := fmt.Sprintf("%s:%d", vip, servicePort)
	for _, e := range edges {
		wait.For(t, 30*time.Second, e+": edged's HAProxy file binds "+vip+":80", func() (bool, string) {
			cfg, _ := hosts[e].ReadFile("/etc/haproxy/edged/edged.cfg")
			return strings.Contains(string(cfg), vip+":80"), string(cfg)
		})
		// The file is written before the reload that binds it; a VIP
		// moved to a host whose HAProxy has not reloaded yet is refused
		// there, so the phases below start once every host listens.
		wait.For(t, 30*time.Second, e+": HAProxy listens on "+vip+":80", func() (bool, string) {
			out, err := l.Exec(e, "ss", "-Hltn", "src", vip+":80")
			return err == nil && strings.TrimSpace(out) != "", fmt.Sprint(out, err)
		})
	}
	wait.For(t, 30*time.Second, "the client is answered on "+target, func() (bool, string) {
		var err error
		_ = l.Do("client", func() error { err = request(target, podAnswer); return nil })
		return err == nil, fmt.Sprint(err)
	})
	p, err := startProbe(l.Hosts["client"], target, podAnswer)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	// phase runs fn under the probe. moves bounds the VIP moves fn causes
	// (a graceful stop hands the VIP over, a start may take it back): a
	// request in flight at a move is reset (see probe.reset), at most one
	// per move; any other failure (refused, timed out, wrong answer) fails
	// the test.
	phase := func(name string, moves int, fn func()) {
		t.Helper()
		before, start := p.now(), time.Now()
		fn()
		time.Sleep(time.Second) // a tail for late failures
		got := p.now().sub(before)
		t.Logf("%s: %s requests, %s", name, got, fmtDur(time.Since(start)))
		if got.fail > got.reset || got.reset > moves || got.ok == 0 {
			t.Errorf("%s: %s requests failed (at most %d resets allowed); first errors: %q", name, got, moves, p.errors())
		}
	}

	phase("systemctl reload edged, haproxy (every host)", 0, func() {
		for _, e := range edges {
			if err := script(hosts[e], "/", "systemctl reload edged\nsystemctl reload haproxy"); err != nil {
				t.Fatal(err)
			}
		}
	})
	phase("systemctl restart edged (one host at a time)", 2*len(edges), func() {
		for _, e := range edges {
			if err := script(hosts[e], "/", "systemctl restart edged"); err != nil {
				t.Fatal(err)
			}
			waitAllHealthy(t, hosts[e])
		}
	})
	phase("upgrade "+versionOld+" -> "+versionNew+" (docs' Upgrade, one host at a time)", 2*len(edges), func() {
		for _, e := range edges {
			if err := script(hosts[e], "/root/v2", steps.Upgrade); err != nil {
				t.Fatal(err)
			}
			if v := hosts[e].must(t, "dpkg-query", "-W", "-f=${Version}", "edged"); v != versionNew {
				t.Errorf("%s: edged %s installed after the upgrade, want %s", e, v, versionNew)
			}
			waitAllHealthy(t, hosts[e])
		}
	})
	for _, e := range edges {
		checkSandbox(t, hosts[e])
	}
	checkUnusableSocket(t, hosts["edge3"])
	// Purge edge1: edge2 and edge3 keep a majority and serve on.
	phase("apt-get purge edged on edge1", 1, func() {
		if err := script(hosts["edge1"], "/root", steps.Purge); err != nil {
			t.Fatal(err)
		}
	})
	p.close()
	for _, e := range edges[1:] {
		if err := script(hosts[e], "/root", steps.Purge); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range edges {
		checkPurged(t, hosts[e])
	}
	t.Logf("whole test %s", fmtDur(time.Since(began)))
}

// operatorFrontendCfg is an operator's own frontend with a regex: edged
// runs `haproxy -c` over it as user edged inside its unit's sandbox, where
// MemoryDenyWriteExecute=yes would make HAProxy's PCRE2 JIT refuse it.
const operatorFrontendCfg = `
frontend operator_admin
	bind 127.0.0.1:8081
	mode http
	http-request deny if { path_reg ^/admin(/[a-z]+)*$ }
	http-request return status 200 content-type text/plain string ok
`

// operatorFrontend appends operatorFrontendCfg to Debian's haproxy.cfg, as
// the operator's file would have it, and reloads HAProxy.
func operatorFrontend(c *Container) error {
	cfg, err := c.ReadFile("/etc/haproxy/haproxy.cfg")
	if err != nil {
		return err
	}
	if err := c.WriteFile("/etc/haproxy/haproxy.cfg", append(cfg, operatorFrontendCfg...), 0o644); err != nil {
		return err
	}
	return script(c, "/", "systemctl reload haproxy")
}

// script runs a docs block in a container, logging its output on failure.
func script(c *Container, dir, block string) error {
	out, err := c.Script(dir, block)
	if err != nil {
		journal, _ := c.Exec("journalctl", "-u", "edged", "-u", "haproxy", "--no-pager", "-n", "150")
		return fmt.Errorf("%s: docs block in %s: %v\n%s\n--- journal:\n%s", c.Name, dir, err, tail(out, 6000), journal)
	}
	return nil
}

// parallel runs fn for every edge host at once and fails on any error.
func parallel(t *testing.T, fn func(edge string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(edges))
	for i, e := range edges {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(e) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// copyCerts does what the docs ask the operator to do by hand: copy
// ca.crt and each host's pair from edge1 to that host, as root:edged 0640.
func copyCerts(t *testing.T, hosts map[string]*Container) {
	t.Helper()
	for _, e := range edges[1:] {
		for _, f := range []string{"ca.crt", e + ".crt", e + ".key"} {
			b, err := hosts["edge1"].ReadFile("/etc/edged/tls/" + f)
			if err != nil {
				t.Fatal(err)
			}
			if err := hosts[e].WriteFile("/root/tls/"+f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			hosts[e].must(t, "install", "-D", "-m", "0640", "-g", "edged", "/root/tls/"+f, filepath.Join("/etc/edged/tls", f))
		}
	}
}

// waitAllHealthy waits until c's `edged members list` shows every host
// healthy and not draining.
func waitAllHealthy(t *testing.T, c *Container) {
	t.Helper()
	if err := wait.UntilEvery(healthyTimeout, 250*time.Millisecond, c.Name+": every member healthy", func() (bool, string) {
		out, err := c.Exec("edged", "members", "list")
		if err != nil {
			return false, out
		}
		n := 0
		for _, line := range strings.Split(out, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) >= 6 && f[4] == "true" && f[5] == "-" {
				n++
			}
		}
		return n == len(edges), out
	}); err != nil {
		t.Fatal(err)
	}
}

// checkSandbox checks that edged runs ready as user edged with the unit's
// sandbox: only CAP_NET_RAW and CAP_NET_ADMIN, no new privileges, a
// seccomp filter.
func checkSandbox(t *testing.T, c *Container) {
	t.Helper()
	show := c.must(t, "systemctl", "show", "edged", "-p", "ActiveState,SubState,MainPID,StatusText")
	if !strings.Contains(show, "ActiveState=active") || !strings.Contains(show, "SubState=running") {
		t.Errorf("%s: edged not active:\n%s", c.Name, show)
	}
	var pid string
	for _, line := range strings.Split(show, "\n") {
		if v, ok := strings.CutPrefix(line, "MainPID="); ok {
			pid = v
		}
	}
	status := c.must(t, "cat", "/proc/"+pid+"/status")
	user := strings.TrimSpace(c.must(t, "ps", "-o", "user=", "-p", pid))
	want := map[string]string{"CapEff": "0000000000003000", "NoNewPrivs": "1", "Seccomp": "2"}
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		if w, ok := want[k]; ok && strings.TrimSpace(v) != w {
			t.Errorf("%s: edged (pid %s) %s = %s, want %s", c.Name, pid, k, strings.TrimSpace(v), w)
		}
	}
	if user != "edged" {
		t.Errorf("%s: edged runs as %q, want edged", c.Name, user)
	}
	t.Logf("%s: %s, user %s", c.Name, strings.ReplaceAll(strings.TrimSpace(show), "\n", " "), user)
}

// checkUnusableSocket takes edged's access to the stats socket away: the
// start fails at ExecStartPre and `systemctl status edged` names the
// socket, the user and the fix; once it is fixed, edged starts again.
func checkUnusableSocket(t *testing.T, c *Container) {
	t.Helper()
	c.must(t, "chmod", "0600", "/run/haproxy/admin.sock")
	if out, err := c.Exec("systemctl", "restart", "edged"); err == nil {
		t.Errorf("%s: edged started without access to the stats socket: %s", c.Name, out)
	}
	// Every retry fails the same way; after StartLimitBurst the unit stays
	// failed and its status shows the last attempt's log.
	if err := wait.UntilEvery(60*time.Second, 500*time.Millisecond, c.Name+": edged failed", func() (bool, string) {
		out, _ := c.Exec("systemctl", "show", "edged", "-p", "ActiveState,NRestarts")
		return strings.Contains(out, "ActiveState=failed"), out
	}); err != nil {
		t.Error(err)
	}
	// systemctl status names the failed check (validate --host, exit 3);
	// the journal it points to has each problem with its fix.
	st, _ := c.Exec("systemctl", "status", "edged", "--no-pager")
	if !strings.Contains(st, "ExecStartPre=/usr/bin/edged validate --host") || !strings.Contains(st, "status=3") {
		t.Errorf("%s: systemctl status edged does not name the failed host check:\n%s", c.Name, st)
	}
	journal, _ := c.Exec("journalctl", "-u", "edged", "--no-pager", "-n", "40")
	for _, want := range []string{"stats socket /run/haproxy/admin.sock: permission denied for user edged", "fix: "} {
		if !strings.Contains(journal, want) {
			t.Errorf("%s: journalctl -u edged does not say %q:\n%s", c.Name, want, journal)
		}
	}
	c.must(t, "chmod", "0660", "/run/haproxy/admin.sock")
	c.must(t, "systemctl", "reset-failed", "edged")
	c.must(t, "systemctl", "start", "edged")
	waitAllHealthy(t, c)
	for _, line := range strings.Split(st+journal, "\n") {
		if strings.Contains(line, "ExecStartPre=") || strings.Contains(line, "stats socket") || strings.Contains(line, "fix: ") {
			t.Logf("%s: without the stats socket: %s", c.Name, strings.TrimSpace(line))
			if strings.Contains(line, "fix: ") {
				break
			}
		}
	}
}

// checkPurged checks that a purge left no file of edged's and HAProxy
// running on the operator's file alone.
func checkPurged(t *testing.T, c *Container) {
	t.Helper()
	for _, p := range []string{"/etc/edged", "/var/lib/edged", "/etc/haproxy/edged", "/usr/bin/edged",
		"/lib/systemd/system/edged.service", "/lib/systemd/system/haproxy.service.d/edged.conf", "/etc/sysctl.d/99-edged.conf"} {
		if out, err := c.Exec("test", "!", "-e", p); err != nil {
			t.Errorf("%s: %s still exists after apt-get purge %s", c.Name, p, out)
		}
	}
	if st, _ := c.Exec("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "edged"); strings.TrimSpace(st) != "" && !strings.HasPrefix(st, "un") && !strings.Contains(st, "no packages found") {
		t.Errorf("%s: dpkg still knows edged: %q", c.Name, st)
	}
	if out, err := c.Exec("systemctl", "is-active", "haproxy"); err != nil {
		t.Errorf("%s: haproxy not active after the purge: %s", c.Name, out)
	}
	if cmd, _ := c.Exec("ps", "-o", "args=", "-C", "haproxy"); strings.Contains(cmd, "/etc/haproxy/edged") {
		t.Errorf("%s: haproxy still loads edged's directory: %s", c.Name, cmd)
	}
}
