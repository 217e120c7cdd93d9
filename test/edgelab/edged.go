package edgelab

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/testpki"
	"github.com/goldentooth/edged/test/wait"
)

// EnvEdged names an environment variable with a prebuilt edged binary.
const EnvEdged = "EDGED_BINARY"

// healthyTimeout bounds the wait for a leader and all members healthy; the
// cold start of three edged processes on a busy 2-core box takes a few
// seconds.
const healthyTimeout = 60 * time.Second

// raftPort is edged's raft port (the default, 7950).
const raftPort = 7950

// Edge is an edge host running edged.
type Edge struct {
	*Host
	// ID is edged's node name and raft ID (edge1, edge2, ...).
	ID string
	// Dir holds the config, data, certificates and logs.
	Dir string
	// Socket is the admin socket `edged status` reads.
	Socket string
	// Config is edged.yaml.
	Config  string
	proc    *Proc
	haproxy *Proc
	admin   *http.Client
}

// builds holds one *build per package path goBuild was asked for.
var builds sync.Map

type build struct {
	once sync.Once
	path string
	err  error
}

// goBuild builds the command pkg (a path inside the repository, e.g.
// "./cmd/edged") once per test process and returns the binary's path.
func goBuild(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	bd := v.(*build)
	bd.once.Do(func() {
		root, err := kubetest.RepoRoot()
		if err != nil {
			bd.err = err
			return
		}
		dir, err := os.MkdirTemp("", "edgelab-bin-")
		if err != nil {
			bd.err = err
			return
		}
		bd.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", bd.path, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			bd.err = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
		}
	})
	if bd.err != nil {
		t.Fatal(bd.err)
	}
	return bd.path
}

// BuildEdged returns the edged binary: $EDGED_BINARY, or ./cmd/edged built
// once per test process.
func BuildEdged(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvEdged); p != "" {
		return p
	}
	return goBuild(t, "./cmd/edged")
}

// Edged is the edged binary the lab runs.
func (l *Lab) Edged() string { return l.edged }

// writeEdgedFiles writes e's edged.yaml, kubeconfig and HAProxy files.
// Without an HAProxy (withHAProxy false) edged's HAProxy health probe is
// off, or no host would ever announce.
func (l *Lab) writeEdgedFiles(t testing.TB, e *Edge, ca *testpki.CA, withHAProxy bool) {
	t.Helper()
	for _, d := range []string{"data", "haproxy/certs"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := ca.Node(t, e.ID, e.Addr)
	e.Socket = filepath.Join(e.Dir, "admin.sock")
	e.Config = filepath.Join(e.Dir, "edged.yaml")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: edged, user: {token: %q}}]
contexts: [{name: lab, context: {cluster: lab, user: edged}}]
current-context: lab
`, apiProxyAddr, l.kube.token)
	var peers []string
	for _, p := range l.Edges {
		peers = append(peers, fmt.Sprintf("{id: %s, address: \"%s:%d\"}", p.ID, p.Addr, raftPort))
	}
	// HAProxy's paths point into the lab directory so edged never touches
	// /etc/haproxy; Options.HAProxy runs an HAProxy on them (startHAProxy
	// then rewrites the operator file), otherwise edged's applies fail and
	// only log.
	exporter := ""
	if l.opts.Exporter {
		exporter = fmt.Sprintf("  prometheus: {bind: %q}\n", ExporterAddr)
	}
	var timings strings.Builder
	for _, line := range l.opts.RaftTimings {
		timings.WriteString("  " + line + "\n")
	}
	cfg := fmt.Sprintf(`node: {name: %s, dataDir: %s, adminSocket: %s}
raft:
  bindAddress: "%s:%d"
  tls: {certFile: %s, keyFile: %s, caFile: %s}
  peers: [%s]
%[16]skubernetes: {kubeconfig: %[10]s}
pools:
  - name: lab
    addresses: [%q]
  - name: lab6
    addresses: [%q]
l2Advertisements:
  - {name: lab, ipAddressPools: [lab, lab6], interfaces: [eth0]}
haproxy:
  configFile: %[13]s/haproxy/edged.cfg
  operatorFile: %[13]s/haproxy/haproxy.cfg
  masterSocket: %[13]s/haproxy/master.sock
  statsSocket: %[13]s/haproxy/admin.sock
  certDir: %[13]s/haproxy/certs
%[15]smetrics: {address: "127.0.0.1:7472"}
health: {haproxy: %[14]t}
`, e.ID, filepath.Join(e.Dir, "data"), e.Socket, e.Addr, raftPort, cert, key, ca.CAFile,
		strings.Join(peers, ", "), filepath.Join(e.Dir, "kubeconfig"), PoolRange, PoolRange6, e.Dir, withHAProxy, exporter, timings.String())
	if l.opts.StaticVIP {
		cfg += fmt.Sprintf("staticVIPs:\n  - {name: %s, address: %s, interfaces: [eth0]}\n", StaticVIPName, StaticVIP)
	}
	files := map[string]string{
		"kubeconfig":          kubeconfig,
		"edged.yaml":          cfg,
		"haproxy/haproxy.cfg": "global\n",
		"haproxy/edged.cfg":   "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.Dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// StartEdged starts `edged run` in e's namespace (again, after a kill or a
// shutdown: the data directory keeps its raft state).
func (l *Lab) StartEdged(e *Edge) error {
	if e.proc != nil && !e.proc.Exited() {
		return fmt.Errorf("%s: edged already running (pid %d)", e.ID, e.proc.PID())
	}
	p, err := l.Start(e.Host, filepath.Join(e.Dir, "edged.log"), l.edged, "run", "--config", e.Config, "--log-level", "debug")
	if err != nil {
		return err
	}
	e.proc = p
	return nil
}

// Running reports whether e's edged runs.
func (e *Edge) Running() bool { return e.proc != nil && !e.proc.Exited() }

// Proc is e's current edged process (nil before the first start).
func (e *Edge) Proc() *Proc { return e.proc }

// KillEdged sends SIGKILL to e's edged and waits for it to be gone.
func (l *Lab) KillEdged(e *Edge) {
	if e.proc != nil {
		e.proc.Kill()
	}
}

// TermEdged sends SIGTERM (a graceful shutdown) and waits up to d for
// edged to exit; it returns edged's exit error.
func (l *Lab) TermEdged(e *Edge, d time.Duration) error {
	if err := e.proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("%s: %w", e.ID, err)
	}
	return e.proc.Wait(d)
}

// adminStatusURL is the admin API's status endpoint (edge/admin); the host
// part is ignored, the connection goes to the unix socket.
const adminStatusURL = "http://edged/v1/status"

// Status reads e's admin socket (what `edged status --json` prints). The
// tests poll it every 10 ms, so it reuses one keep-alive connection per
// host instead of admin.Fetch's client per call, whose idle connections
// would pile up as open files.
func (l *Lab) Status(e *Edge) (admin.Status, error) {
	if e.admin == nil {
		sock := e.Socket
		e.admin = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
			MaxIdleConnsPerHost: 1,
		}}
		l.onClose(e.admin.CloseIdleConnections)
	}
	var st admin.Status
	resp, err := e.admin.Get(adminStatusURL)
	if err != nil {
		return st, fmt.Errorf("%s admin socket: %w", e.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s admin socket: %s", e.ID, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s admin socket: %w", e.ID, err)
	}
	return st, nil
}

// Leader returns the edge host that leads, as seen by a running host.
func (l *Lab) Leader() (*Edge, error) {
	st, err := l.anyStatus()
	if err != nil {
		return nil, err
	}
	for _, e := range l.Edges {
		if e.ID == st.Leader {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no leader (%s sees %q)", st.Node, st.Leader)
}

// Owner returns the edge host the raft state assigns ip (a Service's or a
// static VIP) to.
func (l *Lab) Owner(ip netip.Addr) (*Edge, error) {
	st, err := l.anyStatus()
	if err != nil {
		return nil, err
	}
	if id := assignments(st)[ip.String()]; id != "" {
		for _, e := range l.Edges {
			if e.ID == id {
				return e, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: no announcer in %s's status", ip, st.Node)
}

// assignments maps every allocated IP in st, the Services' and the static
// VIPs', to the host the state assigns it to ("" for none).
func assignments(st admin.Status) map[string]string {
	out := map[string]string{}
	for _, a := range st.Allocations {
		for i, ip := range a.IPs {
			out[ip] = ""
			if i < len(a.Announcer) {
				out[ip] = a.Announcer[i]
			}
		}
	}
	for _, v := range st.StaticVIPs {
		out[v.IP] = v.Holder
	}
	return out
}

// Holder returns the running edge host that holds a lease for ip right now,
// or nil.
func (l *Lab) Holder(ip netip.Addr) *Edge {
	for _, e := range l.Edges {
		if !e.Running() {
			continue
		}
		st, err := l.Status(e)
		if err != nil {
			continue
		}
		for _, s := range st.Leases {
			if s == ip.String() {
				return e
			}
		}
	}
	return nil
}

// leaderWait bounds how long a lookup waits for a leader: an election on a
// loaded machine takes up to a few heartbeat timeouts.
const leaderWait = 10 * time.Second

// anyStatus returns the status of a running host that sees a leader,
// waiting up to leaderWait for an election to finish.
func (l *Lab) anyStatus() (admin.Status, error) {
	var st admin.Status
	err := wait.UntilEvery(leaderWait, 50*time.Millisecond, "a running host that sees a leader", func() (bool, string) {
		var err error
		st, err = l.anyStatusOnce()
		return err == nil, fmt.Sprint(err)
	})
	return st, err
}

func (l *Lab) anyStatusOnce() (admin.Status, error) {
	var last error
	for _, e := range l.Edges {
		if !e.Running() {
			continue
		}
		st, err := l.Status(e)
		if err == nil && st.Leader != "" {
			return st, nil
		}
		if err == nil {
			err = fmt.Errorf("%s sees no leader", e.ID)
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no edged running")
	}
	return admin.Status{}, last
}

// WaitHealthy waits until every running host agrees on a leader, every
// running host is a healthy member, and every allocated IP is leased by
// exactly the host the state assigns it to.
func (l *Lab) WaitHealthy(d time.Duration) (admin.Status, error) {
	var st admin.Status
	var last error
	if err := wait.UntilEvery(d, 50*time.Millisecond, "a healthy lab", func() (bool, string) {
		st, last = l.healthy()
		return last == nil, fmt.Sprint(last)
	}); err != nil {
		l.t.Logf("lab not healthy after %v: %v\n%s", d, last, l.LogTails(1500))
		return admin.Status{}, fmt.Errorf("lab not healthy after %v: %w", d, last)
	}
	return st, nil
}

// stableFor is how long WaitStable wants the assignment unchanged: a host
// that just came back is marked healthy before the leader moves its IPs
// back to it, which takes a few lease renewals (50 ms each).
const stableFor = 500 * time.Millisecond

// WaitStable is WaitHealthy plus: the leader and every IP's announcer stayed
// the same for stableFor, so no rebalance is under way when a trial starts.
func (l *Lab) WaitStable(d time.Duration) (admin.Status, error) {
	var last, stable admin.Status
	var since time.Time
	if err := wait.UntilEvery(d, 50*time.Millisecond, "a healthy, unchanged lab", func() (bool, string) {
		st, err := l.healthy()
		switch {
		case err != nil:
			since = time.Time{}
		case since.IsZero() || !sameAssignment(st, last):
			last, since = st, time.Now()
		case time.Since(since) >= stableFor:
			stable = st
			return true, ""
		}
		return false, ""
	}); err != nil {
		return last, fmt.Errorf("lab not healthy and unchanged for %v within %v\n%s", stableFor, d, l.LogTails(1500))
	}
	return stable, nil
}

func sameAssignment(a, b admin.Status) bool {
	return a.Leader == b.Leader && maps.Equal(assignments(a), assignments(b))
}

func (l *Lab) healthy() (admin.Status, error) {
	var first admin.Status
	leases := map[string]string{}
	running := 0
	for _, e := range l.Edges {
		if !e.Running() {
			continue
		}
		running++
		st, err := l.Status(e)
		if err != nil {
			return st, fmt.Errorf("%s: %w", e.ID, err)
		}
		if st.Leader == "" {
			return st, fmt.Errorf("%s has no leader", e.ID)
		}
		if first.Node == "" {
			first = st
		} else if st.Leader != first.Leader {
			return st, fmt.Errorf("%s sees leader %s, %s sees %s", first.Node, first.Leader, st.Node, st.Leader)
		}
		for _, ip := range st.Leases {
			leases[ip] = e.ID
		}
	}
	if running == 0 {
		return first, fmt.Errorf("no edged running")
	}
	for _, e := range l.Edges {
		if !e.Running() {
			continue
		}
		ok := false
		for _, m := range first.Members {
			ok = ok || (m.ID == e.ID && m.Healthy)
		}
		if !ok {
			return first, fmt.Errorf("%s not a healthy member in %s's view", e.ID, first.Node)
		}
	}
	for ip, owner := range assignments(first) {
		if owner == "" {
			return first, fmt.Errorf("%s has no announcer", ip)
		}
		if leases[ip] != owner {
			return first, fmt.Errorf("%s assigned to %s but leased by %q", ip, owner, leases[ip])
		}
	}
	return first, nil
}

// LogTails returns the last n bytes of every edged log.
func (l *Lab) LogTails(n int) string {
	var b strings.Builder
	for _, e := range l.Edges {
		data, err := os.ReadFile(filepath.Join(e.Dir, "edged.log"))
		if err != nil {
			continue
		}
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "--- %s edged.log (tail)\n%s\n", e.ID, data)
	}
	return b.String()
}

// LogsAround returns every edged log line stamped within [from, to]
// (slog's time=...), leaving out hashicorp/raft's own chatter and failed
// lease requests to hosts that are down, so a failure's moment can be read
// across hosts.
func (l *Lab) LogsAround(from, to time.Time) string {
	var b strings.Builder
	for _, e := range l.Edges {
		data, err := os.ReadFile(filepath.Join(e.Dir, "edged.log"))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s edged.log %s-%s\n", e.ID, from.UTC().Format("15:04:05.000"), to.UTC().Format("15:04:05.000"))
		for _, line := range strings.Split(string(data), "\n") {
			ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			if !ok || !strings.HasPrefix(line, "time=") || strings.Contains(line, "component=hashicorp-raft") || strings.Contains(line, "lease request failed") {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || at.Before(from) || at.After(to) {
				continue
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
