package edgelab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/proxy"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/test/testpki"
	"github.com/goldentooth/edged/test/wait"
)

// The hostile objects' parameters.
const (
	// sharedIP is the address both shared-IP tenants request (in PoolRange).
	sharedIP = "10.77.0.228"
	// zonedIP and zonedIP6 are pool addresses with an interface zone, as a
	// requested IP (netip.ParseAddr accepts a zone of any bytes on IPv6).
	zonedIP  = "10.77.0.227%eth0"
	zonedIP6 = "fd00:77::210%eth0"
	// takenPort is bound on 0.0.0.0 by a process in every edge host.
	takenPort = 8181
	// manyPerSlice endpoints in each of two slices: the API's limit per
	// EndpointSlice, and together more than a backend may hold.
	manyPerSlice = 1000
	// badCheckPath is a check-path annotation that would inject a line.
	badCheckPath = "/x\n    program y"
)

// MetalLB's annotations, as tenants write them.
const (
	annSharedIP = "metallb.universe.tf/allow-shared-ip"
	annIPs      = "metallb.universe.tf/loadBalancerIPs"
)

// manyPrefix holds the 2,000 endpoints' addresses: off the segment, never
// contacted (the Service has no health check).
var manyPrefix = netip.MustParsePrefix("10.79.0.0/16")

// tlsCert is a TLS Service's certificate.
type tlsCert struct {
	addr    string // VIP:443
	certPEM []byte
	certDER []byte
}

// injection is the Node InternalIP of issue 12's first defect: an IPv6
// zone that closes the server line, opens a program section the HAProxy
// master runs (touching marker) and a backend that swallows the rest.
// haproxy -c accepts the file it renders into.
func injection(marker string) string {
	return "fe80::1%x]:1 init-addr none\nglobal\n    master-worker\nprogram pwn\n    command /bin/touch " + marker + "\nbackend pwn_tail\n#"
}

// setupNodePort creates a Node on the pods host and a Service in nodePort
// backend mode served through it; it returns the Service's URL.
func (h *tenants) setupNodePort(t *testing.T) string {
	h.node(t, "lab-node", h.l.Pods().Addr.String())
	svc := h.service(t, h.ns, "via-nodes", map[string]string{lbconfig.AnnBackend: "nodeport"}, nil, tcpPort("http", 80))
	np := svc.Spec.Ports[0].NodePort
	if np == 0 {
		t.Fatal("via-nodes: the apiserver allocated no NodePort")
	}
	if err := h.l.ServePod(Pod{Name: "via-nodes", Addr: netip.AddrPortFrom(h.l.Pods().Addr, uint16(np))}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + VIPAddr(h.waitIP(t, h.ns, "via-nodes"), 80) + "/"
	if err := h.waitServed(url, "via-nodes"); err != nil {
		t.Fatalf("nodePort Service before any hostile object: %v", err)
	}
	return url
}

// setupShared creates tenant X's Service A (port 80) and tenant Y's
// Service B (port 81) sharing sharedIP, both served; it returns the IP.
func (h *tenants) setupShared(t *testing.T) netip.Addr {
	ann := map[string]string{annSharedIP: "k", annIPs: sharedIP}
	a, b := h.pod(t, "shared-a"), h.pod(t, "shared-b")
	h.service(t, h.nsX, "shared-a", ann, nil, tcpPort("http", 80))
	h.podSlice(t, h.nsX, "shared-a", []string{"http"}, a)
	h.service(t, h.nsY, "shared-b", ann, nil, tcpPort("b81", 81))
	h.podSlice(t, h.nsY, "shared-b", []string{"b81", "b80"}, b) // b80 for the port B adds later
	ipA, ipB := h.waitIP(t, h.nsX, "shared-a"), h.waitIP(t, h.nsY, "shared-b")
	if ipA.String() != sharedIP || ipB != ipA {
		t.Fatalf("shared IP: A got %s, B got %s, want both %s", ipA, ipB, sharedIP)
	}
	for port, want := range map[int]string{80: a.Name, 81: b.Name} {
		if err := h.waitServed("http://"+VIPAddr(ipA, port)+"/", want); err != nil {
			t.Fatalf("shared IP before the change: %v", err)
		}
	}
	h.expectNoWarning("6 shared-IP owner A", h.nsX, "shared-a")
	return ipA
}

// setupTLSGone creates a TLS Service whose Secret the hostile phase
// deletes, and waits until every host serves it with its certificate.
func (h *tenants) setupTLSGone(t *testing.T) tlsCert {
	certPEM, keyPEM := testpki.SelfSigned(t, "tls-gone.lab")
	h.tlsSecret(t, h.ns, "tls-gone", certPEM, keyPEM)
	p := h.pod(t, "tls-gone")
	h.service(t, h.ns, "tls-gone", map[string]string{lbconfig.AnnTLSSecret: "tls-gone"}, nil, tcpPort("https", 443))
	h.podSlice(t, h.ns, "tls-gone", []string{"https"}, p)
	c := tlsCert{addr: VIPAddr(h.waitIP(t, h.ns, "tls-gone"), 443), certPEM: certPEM, certDER: der(t, certPEM)}
	if err := h.waitTLS(c.addr, c.certDER, p.Name); err != nil {
		t.Fatalf("TLS Service before its Secret is deleted: %v", err)
	}
	for _, e := range h.l.Edges {
		if files, err := pemFiles(e, certPEM); err != nil || len(files) == 0 {
			t.Fatalf("%s: no PEM file with tls-gone's certificate in %s (%v)", e.ID, e.CertDir(), err)
		}
	}
	return c
}

func der(t testing.TB, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatal(err)
	}
	return b.Bytes
}

// injectNode creates the Node with the injected address and waits until
// edged either refused it (its Event) or let it through (the config has
// a program section, or the program ran). The verdict comes after every
// hostile object exists (checkServed): a renderer that lets the address
// through may first send it over the runtime API (an endpoint change) and
// write it into the file only at the next reload.
func (h *tenants) injectNode(t *testing.T) {
	h.node(t, "hostile-node", injection(h.marker()))
	x := expectation{what: "1 Node with an injected InternalIP", kind: "Node", name: "hostile-node", reasons: []string{proxy.ReasonInvalidEndpoint}}
	h.expect = append(h.expect, x)
	err := wait.UntilEvery(stepTimeout, 100*time.Millisecond, "the injected Node refused or rendered", func() (bool, string) {
		if p := h.injected(); p != "" {
			return true, p
		}
		got, err := h.warnings()
		return err == nil && len(missing([]expectation{x}, got)) == 0, fmt.Sprint(err)
	})
	switch p := h.injected(); {
	case p != "":
		t.Logf("the injected Node address got through (judged with the others): %s", p)
	case err != nil:
		t.Logf("no Event for the injected Node within %v (judged with the others)", stepTimeout)
	}
}

// marker is the file the injected program would create.
func (h *tenants) marker() string { return filepath.Join(h.l.Dir(), "pwned") }

// injected describes the injection's traces: a program section in any
// host's edged.cfg, or the marker the program creates ("" when none).
func (h *tenants) injected() string {
	var out []string
	for _, e := range h.l.Edges {
		b, err := os.ReadFile(e.HAProxyPaths().Config)
		if err != nil {
			out = append(out, err.Error())
		} else if strings.Contains(string(b), "program") {
			out = append(out, e.ID+"'s edged.cfg contains \"program\"")
		}
	}
	if _, err := os.Stat(h.marker()); err == nil {
		out = append(out, "the injected program ran (created "+h.marker()+")")
	}
	return strings.Join(out, "; ")
}

// hijackSharedIP makes tenant Y's Service B also ask for port 80 on the
// IP it shares with tenant X's A, waits for edged's answer and watches
// VIP:80 through every host for answers from B's pod.
func (h *tenants) hijackSharedIP(t *testing.T, ip netip.Addr) {
	api := h.kc.CoreV1().Services(h.nsY)
	b, err := api.Get(h.ctx, "shared-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Ports = append(b.Spec.Ports, tcpPort("b80", 80))
	if _, err := api.Update(h.ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("shared-b adds port 80: %v", err)
	}
	x := expectation{what: "6 shared-IP Service B adds A's port", kind: "Service", ns: h.nsY, name: "shared-b",
		reasons: []string{kube.ReasonFailed, proxy.ReasonPortNotAllocated}}
	h.expect = append(h.expect, x)
	if err := wait.UntilEvery(stepTimeout, 100*time.Millisecond, "shared-b's Event", func() (bool, string) {
		got, err := h.warnings()
		return err == nil && len(missing([]expectation{x}, got)) == 0, fmt.Sprint(err)
	}); err != nil {
		t.Logf("%v (checked again with the others)", err)
	}
	url := "http://" + VIPAddr(ip, 80) + "/"
	total, other := 0, map[string]int{}
	for end := time.Now().Add(hijackWindow); time.Now().Before(end); {
		for _, e := range h.l.Edges {
			body, err := h.get(e, url)
			total++
			if err == nil && body != "shared-a" {
				other[e.ID+": "+body]++
			}
		}
		time.Sleep(10 * time.Millisecond) // pacing within the observation window
	}
	if len(other) > 0 {
		t.Errorf("%s reached another tenant's pods within %v of the change: %v of %d requests", url, hijackWindow, other, total)
	} else {
		t.Logf("%s: %d requests through every host in %v, none reached tenant Y", url, total, hijackWindow)
	}
}

// createHostile creates the remaining hostile objects at once.
func (h *tenants) createHostile(t *testing.T, gone tlsCert) {
	ns := h.ns
	svc63 := longName("svc", maxLabel)
	h.service(t, h.longNS, svc63, nil, nil, tcpPort("http", 80))
	h.podSlice(t, h.longNS, svc63, []string{"http"}, h.pod(t, "long-names"))
	h.expectNoWarning("2 63-character namespace and name", h.longNS, svc63)

	certPEM, keyPEM := testpki.SelfSigned(t, "long-secret.lab")
	h.tlsSecret(t, ns, h.longSecret(), certPEM, keyPEM)
	h.longCert = tlsCert{certPEM: certPEM, certDER: der(t, certPEM)}
	h.service(t, ns, "long-secret", map[string]string{lbconfig.AnnTLSSecret: h.longSecret()}, nil, tcpPort("https", 443))
	h.podSlice(t, ns, "long-secret", []string{"https"}, h.pod(t, "long-secret"))
	h.expectNoWarning("3 253-character TLS Secret name", ns, "long-secret")

	h.service(t, ns, "zoned-ip", nil, func(s *corev1.Service) { s.Spec.LoadBalancerIP = zonedIP }, tcpPort("http", 80))
	h.expectEvent("4 requested IP with a zone", "Service", ns, "zoned-ip", kube.ReasonBadConfig)
	h.service(t, ns, "zoned-ip6", nil, func(s *corev1.Service) {
		single := corev1.IPFamilyPolicySingleStack
		s.Spec.IPFamilies, s.Spec.IPFamilyPolicy, s.Spec.LoadBalancerIP = []corev1.IPFamily{corev1.IPv6Protocol}, &single, zonedIP6
	}, tcpPort("http", 80))
	h.expectEvent("4 requested IPv6 with a zone", "Service", ns, "zoned-ip6", kube.ReasonBadConfig)

	h.holdPort(t, takenPort)
	h.service(t, ns, "port-taken", nil, nil, tcpPort("http", takenPort))
	h.podSlice(t, ns, "port-taken", []string{"http"}, h.pod(t, "port-taken"))
	h.expectEvent("5 port a host process binds", "Service", ns, "port-taken", proxy.ReasonHAProxyBindFailed)

	if err := h.kc.CoreV1().Secrets(ns).Delete(h.ctx, "tls-gone", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete secret tls-gone: %v", err)
	}
	h.expectEvent("7 TLS Secret deleted", "Service", ns, "tls-gone", proxy.ReasonInvalidTLSSecret)

	h.service(t, ns, "udp-only", nil, nil, corev1.ServicePort{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP})
	h.expectNoWarning("8 UDP port (forwarded by nftables, not HAProxy)", ns, "udp-only")

	h.service(t, ns, "no-node-port", map[string]string{lbconfig.AnnBackend: "nodeport"},
		func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = ptr(false) }, tcpPort("http", 80))
	h.expectEvent("9 nodePort backend without NodePorts", "Service", ns, "no-node-port", proxy.ReasonNoNodePort)

	h.service(t, ns, "many-endpoints", map[string]string{lbconfig.AnnCheck: "none"}, nil, tcpPort("http", 80))
	for k := range 2 {
		var addrs []string
		for i := range manyPerSlice {
			n := k*manyPerSlice + i
			addrs = append(addrs, fmt.Sprintf("10.79.%d.%d", n/200, n%200+1))
		}
		if err := h.slice(ns, "many-endpoints", fmt.Sprintf("many-endpoints-%d", k), discoveryv1.AddressTypeIPv4, slicePorts(PodPort, "http"), addrs...); err != nil {
			t.Fatal(err)
		}
	}
	h.expectEvent("10 2,000 endpoints", "Service", ns, "many-endpoints", proxy.ReasonTooManyEndpoints)

	h.service(t, ns, "bad-annotation", map[string]string{lbconfig.AnnCheck: "http", lbconfig.AnnCheckPath: badCheckPath}, nil, tcpPort("http", 80))
	h.expectEvent("11 annotation with a newline", "Service", ns, "bad-annotation", proxy.ReasonInvalidAnnotation)

	h.createBadEndpoints(t)
}

// longSecret is a valid 253-character Secret name (the most a DNS
// subdomain holds): its PEM path is longer than a path token may be.
func (h *tenants) longSecret() string {
	return longName("s", maxLabel) + "." + longName("t", maxLabel) + "." + longName("u", maxLabel) + "." + longName("v", 61)
}

// createBadEndpoints gives a Service a good pod, and endpoints no edge
// host may forward to: 127.0.0.1 on edged's own metrics port (the API
// refuses loopback in IPv4 slices but takes it as an FQDN), and a zoned
// IPv6 address (the API refuses it: logged, the Node covers zones).
func (h *tenants) createBadEndpoints(t *testing.T) {
	ns := h.ns
	h.service(t, ns, "bad-endpoints", nil, nil, tcpPort("http", 80))
	h.podSlice(t, ns, "bad-endpoints", []string{"http"}, h.pod(t, "bad-endpoints"))
	_, port, _ := net.SplitHostPort(metricsAddr)
	var metrics int32
	fmt.Sscan(port, &metrics)
	if err := h.slice(ns, "bad-endpoints", "bad-endpoints-lo", discoveryv1.AddressTypeFQDN, slicePorts(metrics, "http"), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := h.slice(ns, "bad-endpoints", "bad-endpoints-zone", discoveryv1.AddressTypeIPv6, slicePorts(PodPort, "http"), "fe80::1%eth0"); err != nil {
		t.Logf("the API refuses a zoned endpoint itself: %v", err)
	}
	h.expectEvent("12 loopback and zoned endpoints", "Service", ns, "bad-endpoints", proxy.ReasonInvalidEndpoint)
}

// holdPort listens on 0.0.0.0:port in every edge host, as a host process
// would (no SO_REUSEPORT), until the test ends.
func (h *tenants) holdPort(t *testing.T, port int) {
	for _, e := range h.l.Edges {
		var ln net.Listener
		if err := h.l.Do(e.Host, func() error {
			var err error
			ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
			return err
		}); err != nil {
			t.Fatalf("%s: hold port %d: %v", e.ID, port, err)
		}
		t.Cleanup(func() { ln.Close() })
	}
}
