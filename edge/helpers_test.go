package edge_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// shortDir is a temporary directory with a short path, because unix socket
// paths are limited to 108 bytes and t.TempDir paths can be longer.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "edt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// notifyMsg is one datagram received on the test's NOTIFY_SOCKET.
type notifyMsg struct {
	at   time.Time
	text string
}

// notifySocket is a unixgram socket standing in for systemd's.
type notifySocket struct {
	mu   sync.Mutex
	msgs []notifyMsg
}

// listenNotify opens a notify socket and points NOTIFY_SOCKET at it.
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(shortDir(t), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	ns := &notifySocket{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, notifyMsg{at: time.Now(), text: string(buf[:n])})
			ns.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return ns
}

// find returns the first message containing s.
func (ns *notifySocket) find(s string) (notifyMsg, bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for _, m := range ns.msgs {
		if strings.Contains(m.text, s) {
			return m, true
		}
	}
	return notifyMsg{}, false
}

// count returns how many messages contain s.
func (ns *notifySocket) count(s string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := 0
	for _, m := range ns.msgs {
		if strings.Contains(m.text, s) {
			n++
		}
	}
	return n
}

// segment is one interval during which a host may announce an IP.
type segment struct {
	host       string
	start, end time.Time
}

// fakeAnnouncer records the lease intervals edged hands to its announcer.
// A SetLeases call at t with Until u means "announce from t until u", and a
// later call at t2 ends that at t2 (the new call replaces the old leases).
type fakeAnnouncer struct {
	host    string
	mu      sync.Mutex
	segs    map[netip.Addr][]segment
	open    []netip.Addr // IPs whose last segment is the current one
	started bool
	closed  bool
}

func newFakeAnnouncer(host string) *fakeAnnouncer {
	return &fakeAnnouncer{host: host, segs: map[netip.Addr][]segment{}}
}

func (f *fakeAnnouncer) SetLeases(ips []netip.Addr, until time.Time) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ip := range f.open {
		s := f.segs[ip]
		if last := &s[len(s)-1]; last.end.After(now) {
			last.end = now
		}
	}
	f.open = f.open[:0]
	if !until.After(now) {
		return
	}
	for _, ip := range ips {
		f.segs[ip] = append(f.segs[ip], segment{host: f.host, start: now, end: until})
		f.open = append(f.open, ip)
	}
}

func (f *fakeAnnouncer) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	return nil
}

func (f *fakeAnnouncer) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// announcing reports whether ip's latest segment is current.
func (f *fakeAnnouncer) announcing(ip netip.Addr, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.segs[ip]
	return len(s) > 0 && s[len(s)-1].end.After(now)
}

func (f *fakeAnnouncer) segments() map[netip.Addr][]segment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Addr][]segment{}
	for ip, s := range f.segs {
		out[ip] = append([]segment(nil), s...)
	}
	return out
}

// host is one running in-process edge host.
type host struct {
	name   string
	path   string // its edged.yaml
	app    *edge.Appliance
	ann    *fakeAnnouncer
	admin  string
	cancel context.CancelFunc
	done   chan error
}

// writeConfig writes an edged.yaml for host i of peers and loads it with
// the real loader.
func writeConfig(t *testing.T, dir string, i int, peers []string, metrics string) *config.Config {
	t.Helper()
	return writeConfigWith(t, dir, i, peers, metrics, "")
}

// writeConfigWith is writeConfig with extra appended to the file (top-level
// sections such as staticVIPs).
func writeConfigWith(t *testing.T, dir string, i int, peers []string, metrics, extra string) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: edge%d\n  dataDir: %s\n  adminSocket: %s\n", i+1,
		filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"))
	fmt.Fprintf(&b, "raft:\n  bindAddress: %s\n  insecurePlaintext: true\n  peers:\n", peers[i])
	for j, p := range peers {
		fmt.Fprintf(&b, "    - {id: edge%d, address: %q}\n", j+1, p)
	}
	b.WriteString(`pools:
  - name: primary
    addresses:
      - 10.4.11.0 - 10.4.15.254
l2Advertisements:
  - name: primary
    ipAddressPools: [primary]
`)
	fmt.Fprintf(&b, "metrics:\n  address: %s\n", metrics)
	b.WriteString(extra)
	return mustLoad(t, dir, b.String())
}

// mustLoad writes text as dir/edged.yaml and loads it.
func mustLoad(t *testing.T, dir, text string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "edged.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

// startCluster runs three appliances on loopback and stops them all in
// t.Cleanup.
func startCluster(t *testing.T) []*host {
	t.Helper()
	return startClusterWith(t, "")
}

// startClusterWith is startCluster with extra appended to every host's
// edged.yaml (see writeConfigWith).
func startClusterWith(t *testing.T, extra string) []*host {
	t.Helper()
	peers := freeport.Addrs(t, 3)
	var hosts []*host
	for i := range peers {
		dir := shortDir(t)
		cfg := writeConfigWith(t, dir, i, peers, "127.0.0.1:0", extra) // scraped through the Registry
		ann := newFakeAnnouncer(cfg.Node.Name)
		app := edge.New(cfg, quietLogger(t), ann)
		ctx, cancel := context.WithCancel(context.Background())
		h := &host{name: cfg.Node.Name, path: cfg.Path, app: app, ann: ann, admin: cfg.Node.AdminSocket, cancel: cancel, done: make(chan error, 1)}
		go func() { h.done <- app.Run(ctx) }()
		hosts = append(hosts, h)
	}
	t.Cleanup(func() {
		for _, h := range hosts {
			h.cancel()
		}
		for _, h := range hosts {
			select {
			case err := <-h.done:
				if err != nil {
					t.Errorf("%s: Run: %v", h.name, err)
				}
				h.done <- err // keep it readable for stop()
			case <-time.After(30 * time.Second):
				t.Errorf("%s: Run did not return within 30s of cancel", h.name)
			}
		}
	})
	return hosts
}

// leader waits for a host whose store leads and returns it.
func leader(t *testing.T, hosts []*host) *host {
	t.Helper()
	var l *host
	wait.ForBool(t, 15*time.Second, "a raft leader", func() bool {
		for _, h := range hosts {
			if s := h.app.Store(); s != nil && s.IsLeader() {
				l = h
				return true
			}
		}
		return false
	})
	return l
}

// runApp runs app until the test ends, then cancels it and expects Run to
// return nil within 30 s.
func runApp(t *testing.T, app *edge.Appliance) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s of cancel")
		}
	})
}

// singleHostYAML is the edged.yaml of a one-host group in dir with raft on
// raftAddr (plain TCP), the pool "primary" plus pools (YAML list items),
// and extra top-level sections.
func singleHostYAML(dir, raftAddr, pools, extra string) string {
	return fmt.Sprintf(`node: {name: edge1, dataDir: %s, adminSocket: %s}
raft:
  bindAddress: %q
  insecurePlaintext: true
  peers: [{id: edge1, address: %q}]
pools:
  - name: primary
    addresses: ["10.4.11.0 - 10.4.15.254"]
%s%s`, filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"), raftAddr, raftAddr, pools, extra)
}
