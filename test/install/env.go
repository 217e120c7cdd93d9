package install

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/test/kubetest"
	"github.com/goldentooth/edged/test/lab"
)

// The lab: three edge hosts (containers), a client and a pods host on
// 10.77.0.0/24 (test/lab numbers hosts in order: edge1 .1 ... pods .5);
// the pool is on the same segment, so the client reaches a VIP by ARP,
// answered by edged.
var edges = []string{"edge1", "edge2", "edge3"}

const (
	poolRange   = "10.77.0.200 - 10.77.0.209"
	podPort     = 8080
	podAnswer   = "pod-web"
	apiInLab    = "127.0.0.1:6443" // each edge namespace's own loopback, forwarded to the apiserver
	servicePort = 80
)

// edgedYAML is the operator's edited edged.yaml for host name.
func edgedYAML(name string, addr map[string]string) string {
	var peers strings.Builder
	for _, e := range edges {
		fmt.Fprintf(&peers, "    - {id: %s, address: %s:7950}\n", e, addr[e])
	}
	return fmt.Sprintf(`node:
  name: %[1]s
raft:
  peers:
%[2]s  tls:
    certFile: /etc/edged/tls/%[1]s.crt
    keyFile: /etc/edged/tls/%[1]s.key
    caFile: /etc/edged/tls/ca.crt
kubernetes:
  kubeconfig: /etc/edged/kubeconfig
pools:
  - name: lab
    addresses: [%[3]s]
l2Advertisements:
  - name: lab
    ipAddressPools: [lab]
    interfaces: [eth0]
haproxy:
  serverSlots: 8
`, name, peers.String(), poolRange)
}

// kubeconfig points at the forwarded apiserver with edged's token.
func kubeconfig(token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: lab
    cluster: {server: "https://%s", insecure-skip-tls-verify: true}
users:
  - name: edged
    user: {token: %q}
contexts:
  - name: lab
    context: {cluster: lab, user: edged}
current-context: lab
`, apiInLab, token)
}

// buildDebs builds the .deb twice, as two versions, like `make deb`, and
// returns the directories holding each.
func buildDebs(t *testing.T, versions ...string) []string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, v := range versions {
		out, err := exec.Command("make", "-C", root, "deb", "DEBVERSION="+v, "ARCH=amd64").CombinedOutput()
		if err != nil {
			t.Fatalf("make deb DEBVERSION=%s: %v\n%s", v, err, out)
		}
		name := fmt.Sprintf("edged_%s_amd64.deb", v)
		dir := filepath.Join(t.TempDir(), v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(root, "dist", name)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(src)
		dirs = append(dirs, dir)
	}
	return dirs
}

// servePod answers every request with podAnswer on the pods host.
func servePod(t *testing.T, l *lab.Lab) {
	t.Helper()
	var ln net.Listener
	if err := l.Do("pods", func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("%s:%d", l.Addr["pods"], podPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, podAnswer)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// createService creates Service web (LoadBalancer, port 80) and its
// EndpointSlice (the pods host), and returns the address edged wrote into
// its status.
func createService(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, podIP string) string {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{
			Name: "http", Port: servicePort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(podPort)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ptr := func(b bool) *bool { return &b }
	name, port, proto := "http", int32(podPort), corev1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "web-lab", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{podIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err == nil && len(got.Status.LoadBalancer.Ingress) > 0 {
			return got.Status.LoadBalancer.Ingress[0].IP
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("Service web got no address in 60s")
	return ""
}
