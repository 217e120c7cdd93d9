package edge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/wait"
)

// metric returns the value of the series name{labels} in reg (counter,
// gauge, or a histogram's sample count), and whether it exists.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			return value(mf.GetType(), m), true
		}
	}
	return 0, false
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// waitMetric polls until name{labels} == want.
func waitMetric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	wait.For(t, 15*time.Second, fmt.Sprintf("%s%v = %v", name, labels, want), func() (bool, string) {
		got, ok := metric(t, reg, name, labels)
		return ok && got == want, fmt.Sprintf("%v (present %v)", got, ok)
	})
}

// TestMetricsSingleHost runs a one-host raft appliance and checks the
// metrics' names and values after known events: the first election, an
// allocation (and its lease), a release.
func TestMetricsSingleHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft appliance")
	}
	dir := shortDir(t)
	peers := []string{freeport.Addr(t)}
	cfg := writeConfig(t, dir, 0, peers, "127.0.0.1:0")
	ann := newFakeAnnouncer(cfg.Node.Name)
	app := edge.New(cfg, quietLogger(t), ann)
	runApp(t, app)
	reg := app.Registry()
	pool := map[string]string{"pool": "primary"}
	waitMetric(t, reg, "metallb_allocator_addresses_total", pool, referencePoolSize)
	waitMetric(t, reg, "metallb_allocator_addresses_in_use_total", pool, 0)
	waitMetric(t, reg, "edged_raft_state", map[string]string{"state": "leader"}, 1)
	for _, s := range []string{"follower", "candidate", "shutdown"} {
		waitMetric(t, reg, "edged_raft_state", map[string]string{"state": s}, 0)
	}
	waitMetric(t, reg, "edged_raft_leader", nil, 1)
	// One election: this host became leader once.
	waitMetric(t, reg, "edged_raft_leader_changes_total", nil, 1)
	if term, _ := metric(t, reg, "edged_raft_term", nil); term < 1 {
		t.Errorf("edged_raft_term = %v, want >= 1", term)
	}
	waitMetric(t, reg, "edged_leases_held", nil, 0)

	store := app.Store()
	commits, _ := metric(t, reg, "edged_raft_commit_duration_seconds", nil)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	al, err := store.Allocate(wctx, lbpool.Request{Key: "default/web", Namespace: "default"})
	wcancel()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	waitMetric(t, reg, "metallb_allocator_addresses_in_use_total", pool, 1)
	// MetalLB's per-family gauges, Services per pool, and the speaker's
	// announced series for the one Service on this host.
	waitMetric(t, reg, "metallb_allocator_ipv4_addresses_in_use_total", pool, 1)
	waitMetric(t, reg, "metallb_allocator_ipv6_addresses_in_use_total", pool, 0)
	waitMetric(t, reg, "metallb_allocator_ipv4_addresses_total", pool, referencePoolSize)
	waitMetric(t, reg, "metallb_allocator_ipv6_addresses_total", pool, 0)
	waitMetric(t, reg, "metallb_allocator_services_allocated_total", pool, 1)
	waitMetric(t, reg, "metallb_speaker_announced", map[string]string{
		"service": "default/web", "protocol": "layer2", "node": cfg.Node.Name, "ip": al.IPs[0].String()}, 1)
	waitMetric(t, reg, "metallb_k8s_client_config_loaded_bool", nil, 1)
	waitMetric(t, reg, "metallb_k8s_client_config_stale_bool", nil, 0)
	// The allocation is one more commit (the leader may commit host and
	// assignment updates of its own too, so at least one).
	if after, _ := metric(t, reg, "edged_raft_commit_duration_seconds", nil); after < commits+1 {
		t.Errorf("edged_raft_commit_duration_seconds count %v -> %v, want +1 or more", commits, after)
	}
	// The only host owns, leases and announces the address.
	waitMetric(t, reg, "edged_announce_assigned_ips", map[string]string{"node": cfg.Node.Name}, 1)
	waitMetric(t, reg, "edged_leases_held", nil, 1)
	if !ann.announcing(al.IPs[0], time.Now()) {
		t.Errorf("%v not announced", al.IPs[0])
	}
	if ok, _ := metric(t, reg, "edged_raft_lease_renewals_total", map[string]string{"result": "ok"}); ok < 1 {
		t.Errorf("edged_raft_lease_renewals_total{result=ok} = %v, want >= 1", ok)
	}

	wctx, wcancel = context.WithTimeout(context.Background(), 5*time.Second)
	err = store.Release(wctx, "default/web")
	wcancel()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	waitMetric(t, reg, "metallb_allocator_addresses_in_use_total", pool, 0)
	waitMetric(t, reg, "metallb_allocator_services_allocated_total", pool, 0)
	waitMetric(t, reg, "edged_leases_held", nil, 0)
	if _, ok := metric(t, reg, "metallb_speaker_announced", nil); ok {
		t.Error("metallb_speaker_announced still exported after the release")
	}
	// No second election happened on a single host.
	waitMetric(t, reg, "edged_raft_leader_changes_total", nil, 1)
}

// TestMetricsLeaderChange stops the leader of three hosts and checks that
// a surviving follower counts the second leader.
func TestMetricsLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-host raft cluster")
	}
	hosts := startCluster(t)
	ldr := leader(t, hosts)
	var follower *host
	for _, h := range hosts {
		if h != ldr {
			follower = h
			break
		}
	}
	reg := follower.app.Registry()
	waitMetric(t, reg, "edged_raft_state", map[string]string{"state": "follower"}, 1)
	// The follower counts the first leader once that leader's first
	// heartbeat reaches it, which may be after the leader knows itself.
	var before float64
	wait.For(t, 15*time.Second, "edged_raft_leader_changes_total >= 1 on a follower that knows a leader", func() (bool, string) {
		before, _ = metric(t, reg, "edged_raft_leader_changes_total", nil)
		return before >= 1, fmt.Sprint(before)
	})
	if err := stop(t, ldr); err != nil {
		t.Fatalf("stop leader: %v", err)
	}
	waitMetric(t, reg, "edged_raft_leader_changes_total", nil, before+1)
}

// TestKubeMetrics runs edged's Kubernetes part against the real test
// apiserver and checks client-go's metric names (as MetalLB's controller
// exposes them) and the reconcile latency after one Service is allocated.
func TestKubeMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the test kube-apiserver")
	}
	srv := kubetest.Start(t)
	admin := srv.Client(t)
	ns := srv.Namespace(t)
	dir := shortDir(t)
	cfg := mustLoad(t, dir, singleHostYAML(dir, freeport.Addr(t), "", "metrics: {address: \"127.0.0.1:0\"}\n"))
	log := quietLogger(t)
	kc, err := kube.NewClient(srv.Config(kubetest.Admin))
	if err != nil {
		t.Fatal(err)
	}
	kp := kube.NewPart(cfg, kc, log)
	app := edge.New(cfg, log, nil, kp)
	app.UsePools(kp)
	app.Registry().MustRegister(kube.Collectors()...)
	runApp(t, app)
	reg := app.Registry()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := admin.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, reg, "metallb_allocator_addresses_in_use_total", map[string]string{"pool": "primary"}, 1)
	app.Registry().MustRegister(kp.Collector())
	waitMetric(t, reg, "edged_services_without_ip", nil, 0)
	if v, _ := metric(t, reg, "metallb_k8s_client_updates_total", nil); v < 1 {
		t.Errorf("metallb_k8s_client_updates_total = %v, want >= 1", v)
	}
	wait.ForBool(t, kubeWait, "status written", func() bool {
		s, err := admin.CoreV1().Services(ns).Get(context.Background(), "web", metav1.GetOptions{})
		return err == nil && len(s.Status.LoadBalancer.Ingress) == 1
	})
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		// The informers' LISTs and the status write.
		{"rest_client_requests_total", map[string]string{"code": "200", "method": "GET", "host": host}},
		{"rest_client_requests_total", map[string]string{"code": "200", "method": "PUT", "host": host}},
		{"rest_client_request_duration_seconds", map[string]string{"verb": "GET", "host": host}},
		{"workqueue_adds_total", map[string]string{"name": "services"}},
		{"workqueue_work_duration_seconds", map[string]string{"name": "services"}},
		{"edged_reconcile_duration_seconds", map[string]string{"queue": "services"}},
	} {
		if v, ok := metric(t, reg, c.name, c.labels); !ok || v < 1 {
			t.Errorf("%s%v = %v (present %v), want >= 1", c.name, c.labels, v, ok)
		}
	}
	waitMetric(t, reg, "workqueue_depth", map[string]string{"name": "services"}, 0)
}
