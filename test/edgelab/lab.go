package edgelab

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/goldentooth/edged/test/lab"
	"github.com/goldentooth/edged/test/testpki"
)

// Prefix starts every namespace name this package creates (test/lab's
// naming under its own prefix: edl-fo<pid>-<host>).
const Prefix = "edl-fo"

// The lab segment is test/lab's 10.77.0.0/24: edge host i is 10.77.0.(i+1),
// the client comes after them. Raft, the client's traffic and ARP share it,
// as on a real edge host with one uplink, so link down on a host cuts all
// three.
const (
	// PoolRange is edged's address pool, on the segment so the client ARPs
	// for its addresses.
	PoolRange = "10.77.0.200 - 10.77.0.229"
	// FreeVIPBase starts addresses on the segment that no pool hands out
	// (10.77.0.240-254): the benchmark's keepalived VIPs.
	FreeVIPBase = "10.77.0.240"
	// StaticVIP is the address of the static VIP (edged.yaml staticVIPs,
	// named StaticVIPName) of a lab made with Options.StaticVIP: on the
	// segment, outside every pool.
	StaticVIP = "10.77.0.230"
	// StaticVIPName is that static VIP's name.
	StaticVIPName = "stats"
	// PoolRange6 is the IPv6 pool on the segment's fd00:77::/64 (edge
	// host i is fd00:77::(i+1), the client fd00:77::99).
	PoolRange6 = "fd00:77::200 - fd00:77::21f"
)

// prefix6 is the segment's IPv6 prefix.
const prefix6 = "fd00:77::"

// Options configures a lab.
type Options struct {
	// Edges is the number of edge hosts (default 3).
	Edges int
	// Edged is the edged binary; empty builds ./cmd/edged once per process.
	Edged string
	// HAProxy runs Debian's haproxy (master-worker) in every edge host on
	// the files and sockets edged's config names, adds a pods host for Pod
	// servers, and makes New wait until every edged is ready (/readyz).
	// Without it edged's HAProxy part fails and only logs.
	HAProxy bool
	// StaticVIP adds a static VIP (StaticVIPName at StaticVIP, on eth0) to
	// every host's edged.yaml.
	StaticVIP bool
	// MetalLBCRDs installs MetalLB's CRDs (edge/kube/testdata: IPAddressPool,
	// L2Advertisement, and MetalLB's own ServiceL2Status) and the
	// metallb-system namespace before edged starts, so edged writes
	// ServiceL2Status objects there (MetalLB).
	MetalLBCRDs bool
	// Exporter turns on HAProxy's Prometheus exporter at ExporterAddr in
	// every edge namespace (haproxy.prometheus.bind).
	Exporter bool
	// RaftTimings are extra "key: value" lines of edged.yaml's raft
	// section (docs/config.md), e.g. FastProfile.
	RaftTimings []string
	// ProbeProcesses runs the VIP servers (ServeVIP) and the HTTP probe
	// (StartProbe) as vipprobe processes at real-time priority instead of
	// inside the test process, so the gaps they measure do not include the
	// test process's scheduling delays and garbage collection (on a
	// 2-core machine that also runs three edged and the apiserver).
	ProbeProcesses bool
}

// FastProfile is docs/raft.md's fast profile, for Options.RaftTimings.
var FastProfile = []string{"leaseDuration: 70ms", "clockDriftMargin: 10ms", "heartbeatTimeout: 100ms", "electionTimeout: 100ms"}

// Host is one namespace on the segment.
type Host struct {
	// Name is the short name (e1, e2, e3, cl).
	Name string
	// NS is the namespace name.
	NS string
	// Addr is the host's address on eth0.
	Addr netip.Addr
	// MAC is eth0's hardware address.
	MAC net.HardwareAddr
	nsh netns.NsHandle
	nl  *netlink.Handle
}

// Lab is a running lab. Its methods may be called from one test goroutine.
type Lab struct {
	t    testing.TB
	base *lab.Lab
	dir  string
	// Edges are the edge hosts, Edges[i] named edge<i+1>.
	Edges []*Edge
	// Client is the client host.
	Client *Host
	pods   *Host
	kube   *kubeEnv
	edged  string
	opts   Options

	mu      sync.Mutex
	procs   []*Proc
	closers []func()
	nextPod int
}

// New builds the lab on test/lab (namespaces, bridge, segment), starts the
// apiserver and edged on every edge host, and waits for a raft leader.
// Everything is torn down in t.Cleanup, also after a Fatal at any step. It
// skips when not root.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if opts.Edges == 0 {
		opts.Edges = 3
	}
	var names []string
	for i := 0; i < opts.Edges; i++ {
		names = append(names, fmt.Sprintf("e%d", i+1))
	}
	hosts := append(names, "cl")
	if opts.HAProxy {
		hosts = append(hosts, "pd") // after the client: its address is unchanged
	}
	base := lab.NewWithPrefix(t, Prefix, hosts...) // skips when not root
	l := &Lab{t: t, base: base, dir: t.TempDir(), opts: opts}
	t.Cleanup(l.Close) // runs before base's cleanup deletes the namespaces
	for i, name := range names {
		h := l.host(t, name)
		// Only edged answers ARP for VIPs on lo (configs/99-edged.conf).
		if out, err := l.Exec(h, "sysctl", "-qw",
			"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.eth0.arp_ignore=1",
			"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.eth0.arp_announce=2"); err != nil {
			t.Fatalf("sysctl in %s: %v: %s", h.NS, err, out)
		}
		l.addIPv6(t, h, fmt.Sprint(i+1))
		l.Edges = append(l.Edges, &Edge{Host: h, ID: fmt.Sprintf("edge%d", i+1), Dir: filepath.Join(l.dir, name)})
	}
	l.Client = l.host(t, "cl")
	l.addIPv6(t, l.Client, "99")
	if opts.HAProxy {
		l.pods = l.host(t, "pd")
	}
	start := time.Now()
	l.edged = opts.Edged
	if l.edged == "" {
		l.edged = BuildEdged(t)
	}
	built := time.Now()
	l.startKube(t)
	kubeUp := time.Now()
	ca := testpki.New(t, filepath.Join(l.dir, "pki"), "edgelab-raft")
	for _, e := range l.Edges {
		l.writeEdgedFiles(t, e, ca, opts.HAProxy)
		if opts.HAProxy {
			l.startHAProxy(t, e) // before edged, whose first apply reloads it
		}
	}
	for _, e := range l.Edges {
		if err := l.StartEdged(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WaitHealthy(healthyTimeout); err != nil {
		t.Fatal(err)
	}
	if opts.HAProxy {
		l.waitReady(t)
	}
	t.Logf("edgelab: edged built in %v, kube-apiserver up in %v, raft healthy (and HAProxy ready: %t) in %v",
		built.Sub(start).Round(time.Millisecond), kubeUp.Sub(built).Round(time.Millisecond), opts.HAProxy, time.Since(kubeUp).Round(time.Millisecond))
	return l
}

// host opens a netlink handle in name's namespace and reads eth0's MAC.
func (l *Lab) host(t testing.TB, name string) *Host {
	t.Helper()
	h := &Host{Name: name, NS: l.base.Hosts[name], Addr: netip.MustParseAddr(l.base.Addr[name])}
	var err error
	if h.nsh, err = netns.GetFromName(h.NS); err != nil {
		t.Fatalf("open namespace %s: %v", h.NS, err)
	}
	l.onClose(func() { h.nsh.Close() })
	if h.nl, err = netlink.NewHandleAt(h.nsh); err != nil {
		t.Fatalf("netlink in %s: %v", h.NS, err)
	}
	l.onClose(h.nl.Close)
	link, err := h.nl.LinkByName("eth0")
	if err != nil {
		t.Fatalf("%s eth0: %v", h.NS, err)
	}
	h.MAC = link.Attrs().HardwareAddr
	return h
}

// addIPv6 gives h the address prefix6+suffix on eth0, without duplicate
// address detection so it is usable at once. The kernel's own NDP stays
// silent for VIPs: they live on lo, which answers no solicitations on eth0.
func (l *Lab) addIPv6(t testing.TB, h *Host, suffix string) {
	t.Helper()
	for _, args := range [][]string{
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.eth0.disable_ipv6=0"},
		{"ip", "-6", "addr", "add", prefix6 + suffix + "/64", "dev", "eth0", "nodad"},
	} {
		if out, err := l.Exec(h, args...); err != nil {
			t.Fatalf("%v in %s: %v: %s", args, h.NS, err, out)
		}
	}
}

// onClose registers fn to run at Close, before processes are killed.
func (l *Lab) onClose(fn func()) {
	l.mu.Lock()
	l.closers = append(l.closers, fn)
	l.mu.Unlock()
}

// Dir is the lab's scratch directory (configs, logs, certificates).
func (l *Lab) Dir() string { return l.dir }

// Exec runs a command in h's namespace and returns its combined output.
func (l *Lab) Exec(h *Host, args ...string) (string, error) { return l.base.Exec(h.Name, args...) }

// Do runs fn on a locked OS thread inside h's namespace (test/lab's Do);
// sockets opened in fn stay in h's namespace.
func (l *Lab) Do(h *Host, fn func() error) error { return l.base.Do(h.Name, fn) }

// Close stops every server and probe and kills every process it started
// (by PID); test/lab's own cleanup then deletes the namespaces by name. It
// is idempotent.
func (l *Lab) Close() {
	if l.t.Failed() && l.edged != "" {
		l.t.Logf("edged logs:\n%s", l.LogTails(4000))
		for _, e := range l.Edges {
			if e.haproxy != nil {
				l.t.Logf("%s haproxy.log (tail):\n%s", e.ID, l.haproxyLog(e, 2000))
			}
		}
	}
	l.mu.Lock()
	closers, procs := l.closers, l.procs
	l.closers, l.procs = nil, nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for _, p := range procs {
		p.Kill()
	}
}

// Netlink is a netlink handle inside h's namespace (owned by the lab).
func (h *Host) Netlink() *netlink.Handle { return h.nl }
