package kube

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// referencePool is the reference cluster's MetalLB pool (1,279 addresses).
const referencePool = "10.4.11.0 - 10.4.15.254"

// waitTimeout bounds every condition wait.
const waitTimeout = 30 * time.Second

type env struct {
	srv   *kubetest.Server
	admin kubernetes.Interface
	store *memStore
	ns    string
}

func mustPools(t testing.TB, specs ...string) []lbpool.Pool {
	t.Helper()
	var out []lbpool.Pool
	for i, s := range specs {
		name, rng, _ := strings.Cut(s, "=")
		r, err := lbpool.ParseRange(rng)
		if err != nil {
			t.Fatal(err)
		}
		_ = i
		out = append(out, lbpool.Pool{Name: name, Ranges: []lbpool.Range{r}, AutoAssign: true})
	}
	return out
}

// startEnv starts an apiserver and a controller running with the edged
// token bound to configs/rbac.yaml only.
func startEnv(t testing.TB, opts Options, pools ...string) *env {
	t.Helper()
	srv := kubetest.Start(t)
	cfg := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	st, err := newMemStore(mustPools(t, pools...))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, admin: srv.Client(t), store: st, ns: srv.Namespace(t)}
	startController(t, cfg, st, opts)
	return e
}

// startController runs a controller until the test ends; the returned stop
// ends it earlier and returns once it has stopped (it may be called twice).
func startController(t testing.TB, cfg *rest.Config, st Store, opts Options) (stop func()) {
	t.Helper()
	return startControllerResync(t, cfg, st, opts, 0)
}

// startControllerResync is startController with informers resyncing every
// resync.
func startControllerResync(t testing.TB, cfg *rest.Config, st Store, opts Options, resync time.Duration) (stop func()) {
	t.Helper()
	_, run := newController(clientFor(cfg), st, opts, resync)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newController builds a controller on a cache of its own (as Part
// does) and returns it with run, which runs both until ctx ends and returns
// the controller's error once both have stopped.
func newController(client *Client, st Store, opts Options, resync time.Duration) (*Controller, func(context.Context) error) {
	shared := NewCache(client, resync, nil)
	c := New(client, shared, st, opts)
	return c, func(ctx context.Context) error {
		var informers sync.WaitGroup
		informers.Go(func() { shared.Run(ctx) })
		defer informers.Wait()
		return c.Run(ctx, 2)
	}
}

func lbService(ns, name string, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name}},
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprint("p", p), Port: p, Protocol: corev1.ProtocolTCP})
	}
	return s
}

func (e *env) create(t testing.TB, s *corev1.Service) {
	t.Helper()
	if _, err := e.admin.CoreV1().Services(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", s.Name, err)
	}
}

func (e *env) get(t testing.TB, name string) *corev1.Service {
	t.Helper()
	s, err := e.admin.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return s
}

// waitIP waits until the Service shows an ingress IP and returns it.
func (e *env) waitIP(t testing.TB, name string) string {
	t.Helper()
	var ip string
	wait.For(t, waitTimeout, name+" ingress", func() (bool, string) {
		s := e.get(t, name)
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, "no ingress"
		}
		ip = s.Status.LoadBalancer.Ingress[0].IP
		return true, ""
	})
	return ip
}

// waitEvent waits for an Event with reason on the Service name.
func (e *env) waitEvent(t testing.TB, name, reason string) string {
	t.Helper()
	var msg string
	wait.For(t, waitTimeout, name+" event "+reason, func() (bool, string) {
		evs, err := e.admin.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs.Items {
			if ev.Reason == reason {
				msg = ev.Message
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})
	return msg
}

// update applies mutate to the latest Service, retrying on conflicts with
// the controller's own writes.
func (e *env) update(t testing.TB, name string, mutate func(*corev1.Service)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := e.admin.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		mutate(s)
		_, err = e.admin.CoreV1().Services(e.ns).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update %s: %v", name, err)
	}
}

// clientFor is NewClient that panics: a bad test config is a bug.
func clientFor(cfg *rest.Config) *Client {
	c, err := NewClient(cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// mustRaftStore opens a real single-node raft group over loopback that
// leads and holds pools (specs as for mustPools), closed when t ends.
func mustRaftStore(t testing.TB, pools ...string) *raft.Store {
	t.Helper()
	self := raft.Peer{ID: "h0", Address: freeport.Addr(t)}
	st, err := raft.Open(raft.Config{NodeID: self.ID, BindAddr: self.Address, DataDir: filepath.Join(t.TempDir(), "raft"),
		Peers: []raft.Peer{self}, InsecurePlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Close(ctx)
	})
	wait.For(t, waitTimeout, "raft leader", func() (bool, string) { return st.IsLeader(), "not leader" })
	if err := st.SetPools(context.Background(), mustPools(t, pools...), nil); err != nil {
		t.Fatal(err)
	}
	return st
}
