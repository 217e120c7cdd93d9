package kube

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/goldentooth/edged/broadcast"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// fakeAnnounceState is a raft state the test sets by hand.
type fakeAnnounceState struct {
	mu     sync.Mutex
	v      raft.View
	leader bool
	subs   broadcast.Group
}

func (f *fakeAnnounceState) State() raft.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v
}

func (f *fakeAnnounceState) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeAnnounceState) StateChanges() (<-chan struct{}, func()) { return f.subs.Subscribe() }

// assign makes owners (IP -> host) the state of Service key's IPs from
// pool lab, with stats for that pool.
func (f *fakeAnnounceState) assign(key string, owners map[string]string, stats lbpool.PoolStats) {
	f.mu.Lock()
	al := lbpool.Allocation{Key: key, Pool: "lab"}
	f.v.Assignments = nil
	var ips []string
	for ip := range owners {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	for _, s := range ips {
		ip := netip.MustParseAddr(s)
		al.IPs = append(al.IPs, ip)
		f.v.Assignments = append(f.v.Assignments, raft.IPAssignment{IP: ip, Pool: "lab", Assignment: raft.Assignment{Owner: owners[s]}})
	}
	f.v.Allocations = []lbpool.Allocation{al}
	f.v.Stats = []lbpool.PoolStats{stats}
	f.mu.Unlock()
	f.subs.Notify()
}

// announceEnv is an apiserver with MetalLB's CRDs and Announcers running
// with the edged token bound to configs/rbac.yaml only.
type announceEnv struct {
	*env
	dyn   dynamic.Interface
	state *fakeAnnounceState
}

func startAnnounceEnv(t *testing.T) *announceEnv {
	t.Helper()
	srv := kubetest.Start(t)
	srv.InstallCRDs(t, filepath.Join("testdata", "metallb-crds.yaml"))
	admin := srv.Client(t)
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metallb-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e := &announceEnv{env: &env{srv: srv, admin: admin, ns: srv.Namespace(t)},
		dyn: dynamic.NewForConfigOrDie(srv.Config(kubetest.Admin)), state: &fakeAnnounceState{leader: true}}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
		"metadata": map[string]any{"name": "lab", "namespace": "metallb-system"},
		"spec":     map[string]any{"addresses": []any{"10.4.11.0/28"}},
	}}
	if _, err := e.dyn.Resource(IPAddressPools).Namespace("metallb-system").Create(context.Background(), pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	client := clientFor(cfg)
	edgedDyn := dynamic.NewForConfigOrDie(cfg)
	shared := NewCache(client, 0, nil)
	bcast := newBroadcaster()
	recorder := bcast.NewRecorder(Scheme, corev1.EventSource{Component: "edged"})
	pools := dynamicInformer(edgedDyn, IPAddressPools, "metallb-system", 0, "")
	an := NewAnnouncers(client, edgedDyn, shared, e.state, recorder, AnnouncersOptions{
		Namespace:   "metallb-system",
		PoolObjects: func() []*unstructured.Unstructured { return listUnstructured(pools) },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	bcast.StartRecordingToSink(client.EventSink())
	wg.Go(func() { shared.Run(ctx) })
	wg.Go(func() { pools.RunWithContext(ctx) })
	wg.Go(func() { an.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); bcast.Shutdown() })
	return e
}

// l2Statuses lists the ServiceL2Status objects of Service name as
// "node: status node, serviceNamespace/serviceName [interfaces]".
func (e *announceEnv) l2Statuses(t *testing.T, name string) []string {
	t.Helper()
	list, err := e.dyn.Resource(ServiceL2Statuses).Namespace("metallb-system").List(context.Background(),
		metav1.ListOptions{LabelSelector: LabelServiceName + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range list.Items {
		h := l2HaveOf(&u)
		if h.Labels[LabelServiceNamespace] != e.ns || !strings.HasPrefix(u.GetName(), "l2-") {
			out = append(out, "bad object "+u.GetName())
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s, %s/%s %v", h.Labels[LabelAnnounceNode], h.Status.Node, h.Status.ServiceNamespace, h.Status.ServiceName, h.Status.Interfaces))
	}
	sort.Strings(out)
	return out
}

// waitAnnounced waits until Service name's annotation says value, its
// ServiceL2Statuses are want, and a nodeAssigned Event names host.
func (e *announceEnv) waitAnnounced(t *testing.T, name, value string, want []string, eventNaming string) {
	t.Helper()
	wait.For(t, waitTimeout, name+" announced by "+value, func() (bool, string) {
		if got := e.get(t, name).Annotations[lbconfig.AnnAnnouncingNode]; got != value {
			return false, fmt.Sprintf("annotation %q", got)
		}
		if got := e.l2Statuses(t, name); fmt.Sprint(got) != fmt.Sprint(want) {
			return false, fmt.Sprintf("ServiceL2Statuses %q, want %q", got, want)
		}
		if eventNaming == "" {
			return true, ""
		}
		n, msgs := e.nodeAssigned(t, name, eventNaming)
		return n > 0, fmt.Sprintf("nodeAssigned Events %q", msgs)
	})
}

// nodeAssigned counts the nodeAssigned Events on Service name naming host
// (counting repeats the recorder folded into one) and returns all messages.
func (e *announceEnv) nodeAssigned(t *testing.T, name, host string) (int, []string) {
	t.Helper()
	evs, err := e.admin.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + ReasonNodeAssigned})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var msgs []string
	for _, ev := range evs.Items {
		msgs = append(msgs, ev.Message)
		if ev.Type == corev1.EventTypeNormal && strings.Contains(ev.Message, fmt.Sprintf("node %q", host)) {
			n += int(max(ev.Count, 1))
		}
	}
	return n, msgs
}

func (e *announceEnv) poolStatus(t *testing.T) (poolCounters, string) {
	t.Helper()
	u, err := e.dyn.Resource(IPAddressPools).Namespace("metallb-system").Get(context.Background(), "lab", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return countersOfObject(u), u.GetResourceVersion()
}

// TestAnnouncersWrite: the leader writes who announces a Service (the
// annotation, a nodeAssigned Event, one ServiceL2Status in MetalLB's
// schema) and the IPAddressPool's counts; a move of the IP (its owner
// crashed) replaces the object and the annotation and adds one Event for
// the new host; a state notification without a change writes nothing; a
// follower writes nothing; a deleted Service loses its object.
func TestAnnouncersWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test kube-apiserver")
	}
	e := startAnnounceEnv(t)
	e.create(t, lbService(e.ns, "web", 80))
	e.state.assign(e.ns+"/web", map[string]string{"10.4.11.1": "edge1"}, lbpool.PoolStats{Pool: "lab", TotalV4: 16, InUseV4: 1})
	e.waitAnnounced(t, "web", "edge1", []string{"edge1: edge1, " + e.ns + "/web []"}, "edge1")
	wait.For(t, waitTimeout, "IPAddressPool lab status", func() (bool, string) {
		got, _ := e.poolStatus(t)
		return got == poolCounters{AssignedIPv4: 1, AvailableIPv4: 15}, fmt.Sprintf("%+v", got)
	})

	// The owner crashed: the state moves the IP to edge3.
	e.state.assign(e.ns+"/web", map[string]string{"10.4.11.1": "edge3"}, lbpool.PoolStats{Pool: "lab", TotalV4: 16, InUseV4: 1})
	e.waitAnnounced(t, "web", "edge3", []string{"edge3: edge3, " + e.ns + "/web []"}, "edge3")

	// Repeated notifications of the same state, and a second Service's
	// pool count change: web's objects keep their resourceVersion and no
	// Event repeats.
	svcRV := e.get(t, "web").ResourceVersion
	l2 := e.l2RVs(t)
	n3, _ := e.nodeAssigned(t, "web", "edge3")
	for range 5 {
		e.state.subs.Notify()
	}
	e.state.assign(e.ns+"/web", map[string]string{"10.4.11.1": "edge3"}, lbpool.PoolStats{Pool: "lab", TotalV4: 16, InUseV4: 2})
	wait.For(t, waitTimeout, "pool status follows the counts", func() (bool, string) {
		got, _ := e.poolStatus(t)
		return got == poolCounters{AssignedIPv4: 2, AvailableIPv4: 14}, fmt.Sprintf("%+v", got)
	})
	_, poolRV := e.poolStatus(t)
	time.Sleep(2 * poolStatusEvery) // a quiet stretch is what is measured: two pool passes
	if got := e.get(t, "web").ResourceVersion; got != svcRV {
		t.Errorf("Service written again without a change: resourceVersion %s -> %s", svcRV, got)
	}
	if got := e.l2RVs(t); got != l2 {
		t.Errorf("ServiceL2Status written again without a change: %s -> %s", l2, got)
	}
	if _, rv := e.poolStatus(t); rv != poolRV {
		t.Errorf("IPAddressPool status written again without a change: %s -> %s", poolRV, rv)
	}
	if n, msgs := e.nodeAssigned(t, "web", "edge3"); n != n3 {
		t.Errorf("nodeAssigned for edge3 repeated without a change: %d -> %d (%q)", n3, n, msgs)
	}

	// A follower writes nothing, even when the state changes.
	e.state.mu.Lock()
	e.state.leader = false
	e.state.mu.Unlock()
	e.state.assign(e.ns+"/web", map[string]string{"10.4.11.1": "edge2"}, lbpool.PoolStats{Pool: "lab", TotalV4: 16, InUseV4: 2})
	time.Sleep(2 * poolStatusEvery) // what is measured is that nothing happens
	if got := e.get(t, "web").Annotations[lbconfig.AnnAnnouncingNode]; got != "edge3" {
		t.Errorf("a follower wrote the annotation %q", got)
	}
	// Leading again (a new leader), it catches up at once.
	e.state.mu.Lock()
	e.state.leader = true
	e.state.mu.Unlock()
	e.waitAnnounced(t, "web", "edge2", []string{"edge2: edge2, " + e.ns + "/web []"}, "edge2")

	// Deleting the Service deletes its ServiceL2Status.
	if err := e.admin.CoreV1().Services(e.ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "ServiceL2Status of a deleted Service deleted", func() (bool, string) {
		got := e.l2Statuses(t, "web")
		return len(got) == 0, fmt.Sprint(got)
	})
}

// l2RVs is every ServiceL2Status's name and resourceVersion.
func (e *announceEnv) l2RVs(t *testing.T) string {
	t.Helper()
	list, err := e.dyn.Resource(ServiceL2Statuses).Namespace("metallb-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range list.Items {
		out = append(out, u.GetName()+"@"+u.GetResourceVersion())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
