package haproxylab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/proxy"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/lab"
	"github.com/goldentooth/edged/test/wait"
)

// Lab hosts (namespaces edl-<pid>-hp-*). test/lab puts them on 10.77.0.0/24
// in the order given: edge .1, pods .2, client .3.
const (
	hostEdge   = "hp-edge"
	hostPods   = "hp-pods"
	hostClient = "hp-client"
)

// The VIP pool lives on the edge namespace's lo; the client routes it via
// the edge host's segment address (ARP announcing is not under test here).
const (
	vipPrefix = "10.77.8.0/28"
	vipRange  = "10.77.8.1 - 10.77.8.14"
)

// Pod servers get their own addresses in the pods namespace, all on podPort
// (an EndpointSlice carries one port for all its endpoints).
const (
	podPort      = 8080
	podFirstHost = 20 // pod i listens on 10.77.0.(20+i)
	operatorPort = 8404
	grafanaAddr  = "10.77.0.19:3000" // the operator's own backend, in pods
)

// waitTimeout bounds every condition wait.
const waitTimeout = 30 * time.Second

// env is one lab: namespaces, HAProxy in the edge namespace, the test
// apiserver, a single-node raft group and edged's parts.
type env struct {
	l        *lab.Lab
	srv      *kubetest.Server
	admin    kubernetes.Interface
	ns       string
	dir      string
	bin      string
	paths    haproxy.Paths
	cfg      *config.Config
	store    *raft.Store
	kp       *kube.Part
	client   *http.Client
	reg      *prometheus.Registry
	logFile  *os.File
	nextPod  atomic.Int32
	operator string // the operator's own frontend, edge:8404

	partMu     sync.Mutex
	partCancel context.CancelFunc
	partDone   chan struct{}
}

// newEnv builds the lab. withPart starts proxy.Part; without it the
// caller drives HAProxy itself (the reload baseline).
func newEnv(t testing.TB) *env {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy binary not found (apt-get install -y haproxy): %v", err)
	}
	e := &env{bin: bin, dir: t.TempDir(), reg: prometheus.NewRegistry()}
	e.reg.MustRegister(haproxy.Collectors()...)
	e.l = lab.New(t, hostEdge, hostPods, hostClient)
	e.operator = net.JoinHostPort(e.l.Addr[hostEdge], fmt.Sprint(operatorPort))
	e.must(t, hostEdge, "ip", "addr", "add", vipPrefix, "dev", "lo")
	e.must(t, hostClient, "ip", "route", "add", vipPrefix, "via", e.l.Addr[hostEdge])
	e.logFile, err = os.Create(filepath.Join(e.dir, "edged.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"edged.log", "haproxy.log", "edged.cfg"} {
				if b, err := os.ReadFile(filepath.Join(e.dir, f)); err == nil {
					t.Logf("%s (tail):\n%s", f, tail(string(b), 4000))
				}
			}
		}
		e.logFile.Close()
	})
	e.client = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: e.dial, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test checks the certificate itself
	}}
	e.startGrafana(t)
	e.startHAProxy(t)
	e.startKube(t)
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (e *env) must(t testing.TB, host string, args ...string) {
	t.Helper()
	if out, err := e.l.Exec(host, args...); err != nil {
		t.Fatalf("%s: %s: %v: %s", host, strings.Join(args, " "), err, out)
	}
}

// dial opens a TCP connection from the client namespace.
func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := e.l.Do(hostClient, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listen opens a listener in the pods namespace.
func (e *env) listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := e.l.Do(hostPods, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// startGrafana is the backend of the operator's own frontend.
func (e *env) startGrafana(t testing.TB) {
	t.Helper()
	host, _, _ := net.SplitHostPort(grafanaAddr)
	e.must(t, hostPods, "ip", "addr", "add", host+"/24", "dev", "eth0")
	ln, err := e.listen(grafanaAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "grafana")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// startHAProxy runs HAProxy in the edge namespace the way Debian's unit
// does: master-worker, master socket, the operator's file then edged's.
func (e *env) startHAProxy(t testing.TB) {
	t.Helper()
	op := filepath.Join(e.dir, "haproxy.cfg")
	opCfg := fmt.Sprintf(`global
  stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
  stats timeout 10s
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend operator_grafana
  bind %[2]s
  default_backend operator_grafana
backend operator_grafana
  server grafana %[3]s check inter 1s
`, e.dir, e.operator, grafanaAddr)
	if err := os.WriteFile(op, []byte(opCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	edgedFile := filepath.Join(e.dir, "edged.cfg")
	if err := os.WriteFile(edgedFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.paths = haproxy.Paths{
		Binary: e.bin, OperatorConfigs: []string{op}, Config: edgedFile,
		Master: haproxy.Socket{Network: "unix", Address: filepath.Join(e.dir, "master.sock"), Master: true},
		Stats:  haproxy.Socket{Network: "unix", Address: filepath.Join(e.dir, "admin.sock")},
	}
	logf, err := os.Create(filepath.Join(e.dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", e.l.Hosts[hostEdge], e.bin,
		"-W", "-S", e.paths.Master.Address, "-f", op, "-f", edgedFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: the master and its workers are killed together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	wait.For(t, waitTimeout, "haproxy master with one worker", func() (bool, string) {
		p, err := e.paths.Proc(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return len(p.Workers) == 1, fmt.Sprintf("%+v", p)
	})
	wait.For(t, waitTimeout, "operator frontend", func() (bool, string) {
		body, err := e.get("http://" + e.operator + "/")
		return err == nil && body == "grafana", fmt.Sprint(body, err)
	})
}

func freeTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startKube starts the apiserver, a single-node raft group owning the VIP
// pool and the Service controller (kube.Part) with edged's RBAC role.
func (e *env) startKube(t testing.TB) {
	t.Helper()
	e.srv = kubetest.Start(t)
	e.admin = e.srv.Client(t)
	e.ns = e.srv.Namespace(t)
	edgedCfg := e.srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	log := slog.New(slog.NewTextHandler(e.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	addr := freeTCP(t)
	st, err := raft.Open(raft.Config{NodeID: "edge1", BindAddr: addr, DataDir: filepath.Join(e.dir, "raft"),
		Peers: []raft.Peer{{ID: "edge1", Address: addr}}, InsecurePlaintext: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Close(ctx)
	})
	wait.For(t, waitTimeout, "raft leader", func() (bool, string) { return st.IsLeader(), "not leader" })
	rng, err := lbpool.ParseRange(vipRange)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPools(context.Background(), []lbpool.Pool{{Name: "lab", Ranges: []lbpool.Range{rng}, AutoAssign: true}}, nil); err != nil {
		t.Fatal(err)
	}
	e.cfg = &config.Config{
		Kubernetes: config.Kubernetes{IPMode: config.DefaultIPMode},
		HAProxy: config.HAProxy{
			ConfigFile: e.paths.Config, OperatorFile: e.paths.OperatorConfigs[0],
			MasterSocket: e.paths.Master.Address, StatsSocket: e.paths.Stats.Address,
			Binary: e.bin, CertDir: filepath.Join(e.dir, "certs"),
			ServerSlots: config.DefaultServerSlots, Coalesce: config.DefaultCoalesce,
			BackendMode: config.DefaultBackendMode,
		},
	}
	kc, err := kube.NewClient(edgedCfg)
	if err != nil {
		t.Fatal(err)
	}
	e.kp = kube.NewPart(e.cfg, kc, log.With("part", "kubernetes"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.kp.Run(ctx, st) }()
	t.Cleanup(func() { cancel(); <-done })
	wait.For(t, waitTimeout, "informers synced", func() (bool, string) { return e.kp.Synced(), "not synced" })
}

// startPart runs proxy.Part (the appliance's HAProxy path) until
// stopPart or the end of the test.
func (e *env) startPart(t testing.TB) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(e.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	hp := proxy.New(e.cfg, e.kp, e.kp.Event, log.With("part", "haproxy"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hp.Run(ctx, e.store) }()
	e.partMu.Lock()
	e.partCancel, e.partDone = cancel, done
	e.partMu.Unlock()
	t.Cleanup(e.stopPart)
	wait.For(t, waitTimeout, "first HAProxy apply", func() (bool, string) { return hp.Ready(), "not ready" })
}

// stopPart stops the HAProxy part (idempotent).
func (e *env) stopPart() {
	e.partMu.Lock()
	defer e.partMu.Unlock()
	if e.partCancel != nil {
		e.partCancel()
		<-e.partDone
		e.partCancel = nil
	}
}

// get fetches url from the client namespace and returns the trimmed body.
func (e *env) get(url string) (string, error) {
	return getTrimmed(e.client, url)
}

// getTrimmed fetches url with c and returns the trimmed body of a 200.
func getTrimmed(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	body, err := bodyOK(resp, url)
	return strings.TrimSpace(body), err
}

// bodyOK reads and closes resp's body; a status other than 200 is an
// error naming what was asked.
func bodyOK(resp *http.Response, what string) (string, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s: status %d", what, resp.StatusCode)
	}
	return string(body), nil
}

// pod is an HTTP server in the pods namespace on its own address.
type pod struct {
	name    string
	addr    netip.AddrPort
	healthy atomic.Bool
	srv     *http.Server
}

// startPod starts a pod server that answers its name; /healthz follows
// healthy.
func (e *env) startPod(t testing.TB, name string) *pod {
	t.Helper()
	p := &pod{name: name, addr: e.podAddr(t)}
	p.healthy.Store(true)
	ln, err := e.listen(p.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !p.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, p.name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// podAddr adds the next pod address to the pods namespace and returns it
// with podPort.
func (e *env) podAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	n := e.nextPod.Add(1)
	if n > 150 {
		t.Fatal("too many pods")
	}
	ip := fmt.Sprintf("10.77.0.%d", podFirstHost+int(n))
	e.must(t, hostPods, "ip", "addr", "add", ip+"/24", "dev", "eth0")
	return netip.MustParseAddrPort(fmt.Sprintf("%s:%d", ip, podPort))
}

// stop closes the pod's listener and connections: a crashed pod that
// Kubernetes has not noticed yet.
func (p *pod) stop() { p.srv.Close() }

func ptr[T any](v T) *T { return &v }

// service creates a LoadBalancer Service with one TCP port named "http".
func (e *env) service(t testing.TB, name string, port int32, ann map[string]string) {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := e.admin.CoreV1().Services(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

// vip waits for the Service's allocated address.
func (e *env) vip(t testing.TB, name string) netip.Addr {
	t.Helper()
	var ip netip.Addr
	wait.For(t, waitTimeout, name+" ingress IP", func() (bool, string) {
		s, err := e.admin.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, "no ingress"
		}
		ip, err = netip.ParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		return err == nil, fmt.Sprint(err)
	})
	return ip
}

// endpoint is one EndpointSlice endpoint: a pod and its readiness.
type endpoint struct {
	p     *pod
	ready bool
}

func sliceFor(ns, svc string, eps []endpoint) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-lab", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(podPort)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, ep := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ep.p.addr.Addr().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ep.ready), Serving: ptr(ep.ready), Terminating: ptr(false)},
		})
	}
	return es
}

// setEndpoints creates or replaces the Service's EndpointSlice.
func (e *env) setEndpoints(t testing.TB, svc string, eps ...endpoint) {
	t.Helper()
	if err := e.putSlice(sliceFor(e.ns, svc, eps)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) putSlice(es *discoveryv1.EndpointSlice) error {
	ctx := context.Background()
	api := e.admin.DiscoveryV1().EndpointSlices(es.Namespace)
	_, err := api.Update(ctx, es, metav1.UpdateOptions{})
	if err == nil {
		return nil
	}
	if _, cerr := api.Create(ctx, es, metav1.CreateOptions{}); cerr != nil {
		return fmt.Errorf("endpointslice %s: update: %v; create: %w", es.Name, err, cerr)
	}
	return nil
}

// names sends n requests to url and counts answers by body; failures are
// counted under "".
func (e *env) names(url string, n int) map[string]int {
	return countNames(func() (string, error) { return e.get(url) }, n)
}

// countNames counts the bodies of n calls of get, a failed one as "".
func countNames(get func() (string, error), n int) map[string]int {
	out := map[string]int{}
	for range n {
		body, err := get()
		if err != nil {
			body = ""
		}
		out[body]++
	}
	return out
}

// waitServes waits until n requests in a row to url all succeed and come
// from exactly the want pods.
func (e *env) waitServes(t testing.TB, url string, want ...*pod) {
	t.Helper()
	exp := map[string]bool{}
	for _, p := range want {
		exp[p.name] = true
	}
	n := 6 * len(want)
	wait.For(t, waitTimeout, fmt.Sprintf("%s served by exactly %v", url, keys(exp)), func() (bool, string) {
		got := e.names(url, n)
		if len(got) != len(exp) {
			return false, fmt.Sprint(got)
		}
		for k := range got {
			if !exp[k] {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// reloads returns the master's reload counter once HAProxy is settled:
// the master answers (it does not while it re-executes for a reload) and
// the counter holds still for 300ms, so a reload edged started just before
// is not blamed on what the caller does next.
func (e *env) reloads(t testing.TB) int {
	t.Helper()
	n, last := -1, time.Time{}
	wait.For(t, waitTimeout, "haproxy settled", func() (bool, string) {
		p, err := e.paths.Proc(context.Background())
		if err != nil {
			n = -1
			return false, err.Error()
		}
		if p.Reloads != n {
			n, last = p.Reloads, time.Now()
		}
		return time.Since(last) >= 300*time.Millisecond, fmt.Sprint(p.Reloads)
	})
	return n
}

// failures returns edged_haproxy_failures_total for stage.
func (e *env) failures(t testing.TB, stage string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "edged_haproxy_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "stage" && lp.GetValue() == stage {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitEvent waits for an Event with reason on Service name and returns
// its message.
func (e *env) waitEvent(t testing.TB, name, reason string) string {
	t.Helper()
	var msg string
	wait.For(t, waitTimeout, name+" event "+reason, func() (bool, string) {
		evs, err := e.admin.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range evs.Items {
			if ev.Reason == reason {
				msg = ev.Message
				return true, ""
			}
			seen = append(seen, ev.Reason)
		}
		return false, fmt.Sprint(seen)
	})
	return msg
}

// serverUp reports whether addr is operationally up in backend be.
func (e *env) serverUp(be string, addr netip.AddrPort) (bool, error) {
	reply, err := e.paths.Stats.Command(context.Background(), "show servers state "+be)
	if err != nil {
		return false, err
	}
	rows, err := haproxy.ParseServersState(reply)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.Addr == addr {
			return r.Up(), nil
		}
	}
	return false, errors.New("not in backend")
}

// backendName is edged's backend for the Service's "http" port.
func (e *env) backendName(svc string, port int32) string {
	return lbconfig.SectionName(e.ns, svc, strconv.Itoa(int(port)))
}

// operatorLoad requests the operator's frontend every 20ms until stop and
// counts failures.
type operatorLoad struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	done       chan struct{}
}

func (e *env) startOperatorLoad(stop <-chan struct{}) *operatorLoad {
	o := &operatorLoad{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			body, err := e.get("http://" + e.operator + "/")
			if err == nil && body != "grafana" {
				err = fmt.Errorf("body %q", body)
			}
			if err != nil {
				o.failed.Add(1)
				o.lastErr.Store(err.Error())
			} else {
				o.ok.Add(1)
			}
		}
	}()
	return o
}
