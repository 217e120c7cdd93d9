package edgelab

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/wait"
)

// haproxyStart bounds the wait for a master with one worker; HAProxy
// starts an empty config in tens of milliseconds, but three of them start
// next to the apiserver on a 2-core machine.
const haproxyStart = 30 * time.Second

// readyTimeout bounds the wait for every edged to report ready (/readyz):
// the first HAProxy apply follows the informer sync and one reload.
const readyTimeout = 60 * time.Second

// metricsAddr is edged's metrics listener inside every edge namespace
// (edged.yaml's metrics.address), where /readyz lives.
const metricsAddr = "127.0.0.1:7472"

// ExporterAddr is HAProxy's Prometheus exporter inside every edge
// namespace with Options.Exporter.
const ExporterAddr = "127.0.0.1:8405"

// probeLink is the veth the lab puts in every edge host (with HAProxy) to
// carry the pool's IPv4 addresses, so a test reaches that host's own
// HAProxy on a VIP from inside its namespace: edged keeps VIPs on lo only
// on the announcing host, and a connection from another host to a VIP
// would leave by eth0 for the owner. The kernel answers no ARP for them:
// arp_ignore=1 answers only for addresses on the receiving interface, and
// edged's vip package manages lo only.
const probeLink = "hp0"

// haproxyDir is where edged.yaml points HAProxy's files and sockets.
func (e *Edge) haproxyDir() string { return filepath.Join(e.Dir, "haproxy") }

// HAProxyPaths locates e's HAProxy files and sockets, as edged's config
// names them.
func (e *Edge) HAProxyPaths() haproxy.Paths {
	d := e.haproxyDir()
	return haproxy.Paths{
		OperatorConfigs: []string{filepath.Join(d, "haproxy.cfg")},
		Config:          filepath.Join(d, "edged.cfg"),
		Master:          haproxy.Socket{Network: "unix", Address: filepath.Join(d, "master.sock"), Master: true},
		Stats:           haproxy.Socket{Network: "unix", Address: filepath.Join(d, "admin.sock")},
	}
}

// CertDir is e's haproxy.certDir.
func (e *Edge) CertDir() string { return filepath.Join(e.haproxyDir(), "certs") }

// HAProxy is e's HAProxy master (nil without Options.HAProxy).
func (e *Edge) HAProxy() *Proc { return e.haproxy }

// operatorConfig is the operator's haproxy.cfg, as docs/haproxy.md asks:
// global with the stats socket at level admin (edged's runtime API), and
// nothing else, so every proxy HAProxy runs is edged's.
const operatorConfig = `global
  stats socket %s mode 600 level admin expose-fd listeners
  stats timeout 10s
`

// startHAProxy runs Debian's haproxy in e's namespace the way its unit
// does (master-worker, master socket, the operator's file then edged's),
// directly under `ip netns exec`, in its own process group so Close kills
// master and workers by the master's PID.
func (l *Lab) startHAProxy(t testing.TB, e *Edge) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not on PATH (apt-get install -y haproxy, as .ci/run does): %v", err)
	}
	// Every host binds every VIP, owned or not (configs/99-edged.conf).
	if out, err := l.Exec(e.Host, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1"); err != nil {
		t.Fatalf("sysctl in %s: %v: %s", e.NS, err, out)
	}
	l.addProbeLink(t, e.Host)
	p := e.HAProxyPaths()
	if err := os.WriteFile(p.OperatorConfigs[0], []byte(fmt.Sprintf(operatorConfig, p.Stats.Address)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.runHAProxy(bin, e); err != nil {
		t.Fatal(err)
	}
}

// runHAProxy starts e's HAProxy on the files on disk (edged's last render
// included, as systemd's restart would) and waits for a master with one
// worker.
func (l *Lab) runHAProxy(bin string, e *Edge) error {
	p := e.HAProxyPaths()
	proc, err := l.StartGroup(e.Host, filepath.Join(e.haproxyDir(), "haproxy.log"),
		bin, "-W", "-S", p.Master.Address, "-f", p.OperatorConfigs[0], "-f", p.Config)
	if err != nil {
		return err
	}
	e.haproxy = proc
	return wait.Until(haproxyStart, e.ID+" haproxy master with one worker", func() (bool, string) {
		if proc.Exited() {
			return false, "haproxy exited: " + l.haproxyLog(e, 1000)
		}
		pr, err := p.Proc(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return len(pr.Workers) == 1, fmt.Sprintf("%+v", pr)
	})
}

// KillHAProxy SIGKILLs e's HAProxy, master and workers (its process
// group), as a crash or the OOM killer would, and returns when they are
// gone with the time the signal was sent.
func (l *Lab) KillHAProxy(e *Edge) (time.Time, error) {
	if e.haproxy == nil || e.haproxy.Exited() {
		return time.Time{}, fmt.Errorf("%s: no HAProxy running", e.ID)
	}
	at := time.Now()
	e.haproxy.Kill()
	return at, nil
}

// RestartHAProxy starts e's HAProxy again after KillHAProxy.
func (l *Lab) RestartHAProxy(e *Edge) error {
	if e.haproxy != nil && !e.haproxy.Exited() {
		return fmt.Errorf("%s: HAProxy already running (pid %d)", e.ID, e.haproxy.PID())
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return err
	}
	return l.runHAProxy(bin, e)
}

// addProbeLink gives h a veth pair (both ends in h) carrying the pool's
// IPv4 addresses; see probeLink.
func (l *Lab) addProbeLink(t testing.TB, h *Host) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: probeLink}, PeerName: probeLink + "p"}
	if err := h.nl.LinkAdd(veth); err != nil {
		t.Fatalf("%s: add %s: %v", h.NS, probeLink, err)
	}
	for _, name := range []string{probeLink, probeLink + "p"} {
		link, err := h.nl.LinkByName(name)
		if err == nil {
			err = h.nl.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("%s: %s up: %v", h.NS, name, err)
		}
	}
	link, err := h.nl.LinkByName(probeLink)
	if err != nil {
		t.Fatal(err)
	}
	rng, err := lbpool.ParseRange(PoolRange)
	if err != nil {
		t.Fatal(err)
	}
	for ip := rng.First; ip.IsValid() && ip.Compare(rng.Last) <= 0; ip = ip.Next() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
		if err := h.nl.AddrAdd(link, a); err != nil {
			t.Fatalf("%s: add %s to %s: %v", h.NS, ip, probeLink, err)
		}
	}
}

// haproxyLog returns the last n bytes of e's HAProxy output.
func (l *Lab) haproxyLog(e *Edge, n int) string {
	return tail(filepath.Join(e.haproxyDir(), "haproxy.log"), n)
}

// waitReady waits until every edged answers /readyz with 200: raft has a
// leader and the HAProxy part applied its first model.
func (l *Lab) waitReady(t testing.TB) {
	t.Helper()
	for _, e := range l.Edges {
		if err := wait.Until(readyTimeout, e.ID+" /readyz", func() (bool, string) {
			err := l.Ready(e)
			return err == nil, fmt.Sprint(err)
		}); err != nil {
			t.Fatalf("%v\n%s", err, l.LogTails(3000))
		}
	}
}

// Ready asks e's edged for /readyz from inside e's namespace; nil means
// 200.
func (l *Lab) Ready(e *Edge) error {
	resp, err := l.HTTPVia(e.Host).Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /readyz: %s", e.ID, resp.Status)
	}
	return nil
}

// viaTimeout bounds one connection or request made through HTTPVia.
const viaTimeout = 2 * time.Second

// DialVia opens a TCP connection to addr from inside h's namespace. To a
// VIP from an edge host it reaches that host's own HAProxy (probeLink).
func (l *Lab) DialVia(ctx context.Context, h *Host, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(h, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: viaTimeout}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// HTTPVia is an HTTP client whose connections start inside h's
// namespace, one per request; TLS is not verified (tests compare the
// certificate themselves).
func (l *Lab) HTTPVia(h *Host) *http.Client {
	return &http.Client{Timeout: viaTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return l.DialVia(ctx, h, addr)
		},
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // a test checks the certificate itself
	}}
}

// VIPAddr is ip:port as a dial address.
func VIPAddr(ip netip.Addr, port int) string { return netip.AddrPortFrom(ip, uint16(port)).String() }

// WaitServedEverywhere waits until every running edge host's own HAProxy
// answers http://ip:port/ with 200 (through probeLink, so each host is
// asked, not the announcer). A Service's frontend reaches each host with
// that host's next reload; a VIP moved to a host before it has is refused
// there, so tests that move VIPs start from here.
func (l *Lab) WaitServedEverywhere(ip netip.Addr, port uint16, d time.Duration) error {
	url := "http://" + netip.AddrPortFrom(ip, port).String() + "/"
	for _, e := range l.Edges {
		if !e.Running() {
			continue
		}
		c := l.HTTPVia(e.Host)
		if err := wait.Until(d, e.ID+"'s HAProxy serving "+url, func() (bool, string) {
			resp, err := c.Get(url)
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		}); err != nil {
			return err
		}
	}
	return nil
}
