package edge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// kubeWait bounds each wait on the apiserver and the raft state.
const kubeWait = 30 * time.Second

// crdEnv is one edged (single-node raft, Kubernetes part with
// kubernetes.metallbCRDs) against a real apiserver with MetalLB's CRDs.
type crdEnv struct {
	srv   *kubetest.Server
	admin kubernetes.Interface
	dyn   dynamic.Interface
	app   *edge.Appliance
	ns    string // for Services
}

const metallbNS = "metallb-system"

// startCRDEnv starts the apiserver, installs MetalLB's CRDs and runs edged
// with the edged token bound to configs/rbac.yaml only; extra is appended
// to its edged.yaml.
func startCRDEnv(t *testing.T, extra ...string) *crdEnv {
	t.Helper()
	srv := kubetest.Start(t)
	srv.InstallCRDs(t, filepath.Join("kube", "testdata", "metallb-crds.yaml"))
	e := &crdEnv{srv: srv, admin: srv.Client(t), dyn: dynamic.NewForConfigOrDie(srv.Config(kubetest.Admin)), ns: srv.Namespace(t)}
	if _, err := e.admin.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metallbNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	edged := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))

	dir := shortDir(t)
	raftAddr := freeport.Addr(t)
	cfgText := fmt.Sprintf(`node: {name: edge1, dataDir: %s, adminSocket: %s}
raft:
  bindAddress: %q
  insecurePlaintext: true
  peers: [{id: edge1, address: %q}]
kubernetes:
  metallbCRDs: true
pools:
  - name: primary
    addresses: ["10.4.11.0 - 10.4.15.254"]
metrics: {address: %q}
`, filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"), raftAddr, raftAddr, "127.0.0.1:0")
	cfg := mustLoad(t, dir, cfgText+strings.Join(extra, ""))
	log := quietLogger(t)
	kc, err := kube.NewClient(edged)
	if err != nil {
		t.Fatal(err)
	}
	kp := kube.NewPart(cfg, kc, log)
	kp.WatchMetalLB(dynamic.NewForConfigOrDie(edged))
	e.app = edge.New(cfg, log, nil, kp)
	e.app.UsePools(kp)
	runApp(t, e.app)
	wait.ForBool(t, kubeWait, "raft leader", func() bool { s := e.app.Store(); return s != nil && s.IsLeader() })
	return e
}

// raftPools returns the replicated pools as "name=ranges".
func (e *crdEnv) raftPools() map[string]string {
	out := map[string]string{}
	for _, p := range e.app.Store().State().Pools {
		var rs []string
		for _, r := range p.Ranges {
			rs = append(rs, r.String())
		}
		out[p.Name] = strings.Join(rs, ",")
	}
	return out
}

func (e *crdEnv) waitPools(t *testing.T, what string, cond func(map[string]string) bool) {
	t.Helper()
	var last map[string]string
	wait.ForBool(t, kubeWait, what, func() bool { last = e.raftPools(); return cond(last) })
	t.Logf("raft pools: %v", last)
}

// applyPool creates or updates the IPAddressPool name with addresses.
func (e *crdEnv) applyPool(t *testing.T, name string, addresses ...string) {
	t.Helper()
	e.apply(t, kube.IPAddressPools, "IPAddressPool", name, map[string]any{"addresses": toAny(addresses)})
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// apply creates or updates the MetalLB object kind/name with spec.
func (e *crdEnv) apply(t *testing.T, gvr schema.GroupVersionResource, kind, name string, spec map[string]any) {
	t.Helper()
	res := e.dyn.Resource(gvr).Namespace(metallbNS)
	ctx := context.Background()
	cur, err := res.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		cur.Object["spec"] = spec
		if _, err := res.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update %s %s: %v", kind, name, err)
		}
		return
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": metallbNS},
		"spec":     spec,
	}}
	if _, err := res.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", kind, name, err)
	}
}

func (e *crdEnv) deletePool(t *testing.T, name string) {
	t.Helper()
	if err := e.dyn.Resource(kube.IPAddressPools).Namespace(metallbNS).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete IPAddressPool %s: %v", name, err)
	}
}

func (e *crdEnv) service(t *testing.T, name, pool string) {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if pool != "" {
		s.Annotations["metallb.io/address-pool"] = pool
	}
	if _, err := e.admin.CoreV1().Services(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

func (e *crdEnv) ip(t *testing.T, name string) string {
	t.Helper()
	s, err := e.admin.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Status.LoadBalancer.Ingress) == 0 {
		return ""
	}
	return s.Status.LoadBalancer.Ingress[0].IP
}

func (e *crdEnv) waitIP(t *testing.T, name, prefix string) string {
	t.Helper()
	var ip string
	wait.ForBool(t, kubeWait, name+" ingress in "+prefix, func() bool { ip = e.ip(t, name); return strings.HasPrefix(ip, prefix) })
	return ip
}

// waitEvent waits for an Event with reason (and a message containing
// text) on the object name in namespace ns, and returns its message.
func (e *crdEnv) waitEvent(t *testing.T, ns, name, reason, text string) string {
	t.Helper()
	var msg string
	wait.ForBool(t, kubeWait, fmt.Sprintf("%s event on %s/%s containing %q", reason, ns, name, text), func() bool {
		evs, err := e.admin.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false
		}
		for _, ev := range evs.Items {
			if ev.Reason == reason && strings.Contains(ev.Message, text) {
				msg = ev.Message
				return true
			}
		}
		return false
	})
	return msg
}

// TestMetalLBCRDPools drives the pools through MetalLB's IPAddressPool and
// L2Advertisement objects on a real apiserver, with edged's token bound to
// configs/rbac.yaml only: create, update, invalid objects (the last good
// pools stay), a name clash with edged.yaml, delete.
func TestMetalLBCRDPools(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver (make testapiserver)")
	}
	e := startCRDEnv(t)
	e.waitPools(t, "the file's pool in raft", func(p map[string]string) bool { return len(p) == 1 && p["primary"] != "" })
	reg := e.app.Registry()
	waitMetric(t, reg, "metallb_k8s_client_config_loaded_bool", nil, 1)
	waitMetric(t, reg, "metallb_k8s_client_config_stale_bool", nil, 0)

	// A Service asking for a pool that does not exist yet waits for it.
	e.service(t, "c1", "crd")
	e.waitEvent(t, e.ns, "c1", kube.ReasonFailed, "")
	e.applyPool(t, "crd", "192.168.60.0/30")
	e.waitPools(t, "crd pool in raft", func(p map[string]string) bool { return p["crd"] == "192.168.60.0 - 192.168.60.3" && p["primary"] != "" })
	e.waitIP(t, "c1", "192.168.60.")
	for _, n := range []string{"c2", "c3", "c4"} {
		e.service(t, n, "crd")
		e.waitIP(t, n, "192.168.60.")
	}
	e.service(t, "c5", "crd")
	e.waitEvent(t, e.ns, "c5", kube.ReasonFailed, "no free address")

	// Growing the pool lets the waiting Service in.
	e.applyPool(t, "crd", "192.168.60.0/29")
	if ip := e.waitIP(t, "c5", "192.168.60."); ip != "192.168.60.4" {
		t.Errorf("c5 got %s after the pool grew, want 192.168.60.4", ip)
	}
	// The leader writes the pool's counts into its status (MetalLB 0.15's
	// fields): five of the /29's eight addresses assigned.
	wait.For(t, kubeWait, "IPAddressPool crd status", func() (bool, string) {
		u, err := e.dyn.Resource(kube.IPAddressPools).Namespace(metallbNS).Get(context.Background(), "crd", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		want := map[string]any{"assignedIPv4": int64(5), "availableIPv4": int64(3), "assignedIPv6": int64(0), "availableIPv6": int64(0)}
		return fmt.Sprint(st) == fmt.Sprint(want), fmt.Sprintf("status %v, want %v", st, want)
	})

	// An invalid object: Event on it, the last good pools stay.
	e.applyPool(t, "crd", "192.168.60.0/29", "not-an-address")
	msg := e.waitEvent(t, metallbNS, "crd", kube.ReasonBadConfig, "not-an-address")
	t.Logf("invalid pool event: %s", msg)
	// MetalLB's meaning: the objects in force are not the latest.
	waitMetric(t, reg, "metallb_k8s_client_config_stale_bool", nil, 1)
	e.service(t, "c6", "crd")
	e.waitIP(t, "c6", "192.168.60.")
	if p := e.raftPools(); p["crd"] != "192.168.60.0 - 192.168.60.7" {
		t.Errorf("after an invalid update raft holds crd=%q, want the last good 192.168.60.0 - 192.168.60.7", p["crd"])
	}

	// A name clash with edged.yaml's pool is refused, naming both.
	e.applyPool(t, "primary", "192.168.70.0/30")
	msg = e.waitEvent(t, metallbNS, "primary", kube.ReasonBadConfig, "already defined")
	if !strings.Contains(msg, "edged.yaml") {
		t.Errorf("clash event %q does not name edged.yaml", msg)
	}
	e.deletePool(t, "primary")
	// Fixing the bad object and adding an advertisement that selects it.
	e.applyPool(t, "crd", "192.168.60.0/29", "192.168.61.0/31")
	e.apply(t, kube.L2Advertisements, "L2Advertisement", "l2", map[string]any{"ipAddressPools": []any{"crd"}})
	e.waitPools(t, "crd pool grown in raft", func(p map[string]string) bool {
		return p["crd"] == "192.168.60.0 - 192.168.60.7,192.168.61.0 - 192.168.61.1" && len(p) == 2
	})
	waitMetric(t, reg, "metallb_k8s_client_config_stale_bool", nil, 0)
	// An advertisement naming a missing pool is invalid too.
	e.apply(t, kube.L2Advertisements, "L2Advertisement", "l2-bad", map[string]any{"ipAddressPools": []any{"nope"}})
	e.waitEvent(t, metallbNS, "l2-bad", kube.ReasonBadConfig, `no pool named "nope"`)
	if err := e.dyn.Resource(kube.L2Advertisements).Namespace(metallbNS).Delete(context.Background(), "l2-bad", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Deleting the pool removes it from raft; live addresses never move.
	before := map[string]string{}
	for _, n := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		before[n] = e.ip(t, n)
	}
	if err := e.dyn.Resource(kube.L2Advertisements).Namespace(metallbNS).Delete(context.Background(), "l2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deletePool(t, "crd")
	e.waitPools(t, "crd pool gone from raft", func(p map[string]string) bool { return len(p) == 1 && p["crd"] == "" })
	e.service(t, "c7", "crd")
	e.waitEvent(t, e.ns, "c7", kube.ReasonFailed, "")
	for n, ip := range before {
		if got := e.ip(t, n); got != ip {
			t.Errorf("%s moved from %s to %s when its pool was deleted", n, ip, got)
		}
		if al, ok := e.app.Store().Lookup(e.ns + "/" + n); !ok || al.IPs[0].String() != ip {
			t.Errorf("%s: raft holds %v %v, want %s", n, al, ok, ip)
		}
	}
}
