package edgelab

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/test/kubetest"
)

// apiProxyAddr is where edged finds the apiserver inside its namespace: a
// listener the test opens on the namespace's own loopback and forwards to
// the apiserver on root loopback, so no route into the lab is needed.
const apiProxyAddr = "127.0.0.1:6443"

// allocTimeout bounds the wait for a Service's address.
const allocTimeout = 30 * time.Second

type kubeEnv struct {
	srv    *kubetest.Server
	client kubernetes.Interface
	dyn    dynamic.Interface
	ns     string
	token  string
}

// MetalLBNamespace is where a lab made with Options.MetalLBCRDs keeps
// MetalLB's objects (edged's default kubernetes.metallbNamespace).
const MetalLBNamespace = "metallb-system"

func (l *Lab) startKube(t testing.TB) {
	t.Helper()
	srv := kubetest.Start(t)
	cfg := srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t))
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatalf("apiserver URL %s: %v", srv.URL, err)
	}
	l.kube = &kubeEnv{srv: srv, client: srv.Client(t), dyn: dynamic.NewForConfigOrDie(srv.Config(kubetest.Admin)),
		ns: srv.Namespace(t), token: cfg.BearerToken}
	if l.opts.MetalLBCRDs {
		root, err := kubetest.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		srv.InstallCRDs(t, filepath.Join(root, "edge", "kube", "testdata", "metallb-crds.yaml"))
		if _, err := l.kube.client.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: MetalLBNamespace}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range l.Edges {
		if err := l.proxy(e.Host, u.Host); err != nil {
			t.Fatal(err)
		}
	}
}

// proxy listens on apiProxyAddr inside h's namespace and forwards every
// connection to target on root loopback (TLS passes through untouched).
func (l *Lab) proxy(h *Host, target string) error {
	stop, err := l.base.Forward(h.Name, apiProxyAddr, target)
	if err != nil {
		return fmt.Errorf("apiserver proxy: %w", err)
	}
	l.onClose(stop)
	return nil
}

// Kube is an admin client of the lab's apiserver.
func (l *Lab) Kube() kubernetes.Interface { return l.kube.client }

// Dynamic is an admin dynamic client of the lab's apiserver (MetalLB's
// objects).
func (l *Lab) Dynamic() dynamic.Interface { return l.kube.dyn }

// Namespace is the Kubernetes namespace the lab's Services live in.
func (l *Lab) Namespace() string { return l.kube.ns }

// CreateService creates a LoadBalancer Service through client-go and waits
// until edged wrote its address into status.loadBalancer.ingress.
func (l *Lab) CreateService(ctx context.Context, name string) (netip.Addr, error) {
	return l.createService(ctx, name, corev1.IPv4Protocol)
}

// CreateServiceIPv6 is CreateService for a single-stack IPv6 Service; its
// address comes from PoolRange6.
func (l *Lab) CreateServiceIPv6(ctx context.Context, name string) (netip.Addr, error) {
	return l.createService(ctx, name, corev1.IPv6Protocol)
}

// lbService is a single-stack LoadBalancer Service of the lab (port
// ProbePort, selector app=name).
func lbService(ns, name string, family corev1.IPFamily) *corev1.Service {
	single := corev1.IPFamilyPolicySingleStack
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			Selector:       map[string]string{"app": name},
			Ports:          []corev1.ServicePort{{Name: "http", Port: ProbePort, Protocol: corev1.ProtocolTCP}},
			IPFamilies:     []corev1.IPFamily{family},
			IPFamilyPolicy: &single,
		},
	}
}

func (l *Lab) createService(ctx context.Context, name string, family corev1.IPFamily) (netip.Addr, error) {
	svc := lbService(l.kube.ns, name, family)
	cs := l.kube.client.CoreV1().Services(l.kube.ns)
	if _, err := cs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s: %w", name, err)
	}
	deadline := time.Now().Add(allocTimeout)
	for time.Now().Before(deadline) {
		got, err := cs.Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(got.Status.LoadBalancer.Ingress) > 0 {
			ip, err := netip.ParseAddr(got.Status.LoadBalancer.Ingress[0].IP)
			if err != nil {
				return netip.Addr{}, fmt.Errorf("service %s: ingress IP %q: %w", name, got.Status.LoadBalancer.Ingress[0].IP, err)
			}
			return ip, nil
		}
		if ctx.Err() != nil {
			return netip.Addr{}, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return netip.Addr{}, fmt.Errorf("service %s: no address after %v", name, allocTimeout)
}

// CreateServices creates Services web-0, web-1, ... (at most max) until
// every edge host announces at least one of their IPs, starts the VIP HTTP
// servers for them, and returns the IPs in creation order.
func (l *Lab) CreateServices(ctx context.Context, max int) ([]netip.Addr, error) {
	var vips []netip.Addr
	covered := false
	for i := 0; i < max && !covered; i++ {
		ip, err := l.CreateService(ctx, fmt.Sprintf("web-%d", i))
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, l.LogTails(2000))
		}
		vips = append(vips, ip)
		st, err := l.WaitHealthy(healthyTimeout)
		if err != nil {
			return nil, err
		}
		covered = true
		for _, e := range l.Edges {
			found := false
			for _, m := range st.Members {
				found = found || (m.ID == e.ID && m.Announce > 0)
			}
			covered = covered && found
		}
	}
	if !covered {
		return nil, fmt.Errorf("%d Services and still an edge host announces none", max)
	}
	for _, ip := range vips {
		if err := l.ServeVIP(ip); err != nil {
			return nil, err
		}
	}
	return vips, nil
}

// SetEndpoints creates or replaces the EndpointSlice of Service name (one
// made by CreateService) with one ready endpoint per pod, on PodPort under
// the Service's port name "http".
func (l *Lab) SetEndpoints(ctx context.Context, name string, pods ...Pod) error {
	port, proto, portName := int32(PodPort), corev1.ProtocolTCP, "http"
	return l.setSlice(ctx, name, []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}}, pods)
}

// setSlice creates or replaces Service name's lab EndpointSlice: ports,
// and one ready IPv4 endpoint per pod.
func (l *Lab) setSlice(ctx context.Context, name string, ports []discoveryv1.EndpointPort, pods []Pod) error {
	ready := true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: l.kube.ns, Name: name + "-lab", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.Addr.Addr().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	api := l.kube.client.DiscoveryV1().EndpointSlices(l.kube.ns)
	old, err := api.Get(ctx, es.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		es.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, es, metav1.UpdateOptions{})
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, es, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("endpoints of %s: %w", name, err)
	}
	return nil
}
