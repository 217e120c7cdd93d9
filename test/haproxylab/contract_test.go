package haproxylab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/edge/proxy"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/test/wait"
)

// outsideClient is a second address of the client host, outside the
// source ranges the tests allow (the client's own address is inside).
const outsideClient = "10.77.0.9"

// idleOld is longer than edged's old fixed 50s idle timeout: a connection
// idle this long through a VIP was cut before the timeouts became
// kube-proxy's 24h (haproxy.DefaultTimeouts).
const idleOld = 65 * time.Second

// TestServiceContract checks what kube-proxy enforced and HAProxy now
// must, against a real HAProxy driven by edged's path: source ranges,
// long-lived idle TCP connections, ClientIP affinity across endpoint
// changes, X-Forwarded-For and PROXY protocol from clients, and the
// per-Service ipMode. The idle connection is held while the other subtests
// run (their reloads leave it with the old worker, as in production).
func TestServiceContract(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, network namespaces, haproxy and the test kube-apiserver")
	}
	e := newEnv(t)
	e.must(t, hostClient, "ip", "addr", "add", outsideClient+"/24", "dev", "eth0")
	e.startPart(t)
	inside := netip.MustParseAddr(e.l.Addr[hostClient])

	// Idle TCP: the default and a 2s control, started first.
	echo := e.startEcho(t, "echo")
	e.service(t, "db", 5432, nil)
	e.setEndpoints(t, "db", endpoint{echo, true})
	e.service(t, "db-short", 5433, map[string]string{lbconfig.AnnTimeoutClient: "2s"})
	e.setEndpoints(t, "db-short", endpoint{echo, true})
	db := netip.AddrPortFrom(e.vip(t, "db"), 5432)
	short := netip.AddrPortFrom(e.vip(t, "db-short"), 5433)
	idle := e.idleConn(t, db)
	idleShort := e.idleConn(t, short)
	idleSince := time.Now()

	t.Run("source ranges refuse outside and admit inside", func(t *testing.T) {
		a := e.startPod(t, "ranged")
		e.createService(t, "ranged", 80, nil, func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{inside.String() + "/32"}
		})
		e.setEndpoints(t, "ranged", endpoint{a, true})
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.vip(t, "ranged"), 80))
		e.waitServes(t, url, a)
		if body, err := e.getFrom(netip.MustParseAddr(outsideClient), url); err == nil {
			t.Errorf("client %s outside the ranges was served %q", outsideClient, body)
		}
		// Widening the ranges admits it (a reload, no restart).
		e.updateService(t, "ranged", func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = append(s.Spec.LoadBalancerSourceRanges, outsideClient+"/32")
		})
		wait.For(t, waitTimeout, "outside client admitted", func() (bool, string) {
			body, err := e.getFrom(netip.MustParseAddr(outsideClient), url)
			return err == nil && body == "ranged", fmt.Sprint(body, err)
		})
		// Ranges the apiserver accepts but edged cannot enforce (more than
		// haproxy.MaxSourceRanges; the apiserver refuses malformed ones
		// itself) refuse the whole Service with an Event: never served
		// wider.
		e.updateService(t, "ranged", func(s *corev1.Service) {
			for i := range haproxy.MaxSourceRanges {
				s.Spec.LoadBalancerSourceRanges = append(s.Spec.LoadBalancerSourceRanges, fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256))
			}
		})
		if msg := e.waitEvent(t, "ranged", proxy.ReasonInvalidSourceRanges); !strings.Contains(msg, "not served") {
			t.Errorf("event %q does not say the Service is not served", msg)
		}
		wait.For(t, waitTimeout, "refused Service not served", func() (bool, string) {
			body, err := e.get(url)
			return err != nil, fmt.Sprint(body)
		})
	})

	t.Run("ClientIP affinity pins a client, never to a gone endpoint", func(t *testing.T) {
		a, b, c, d := e.startPod(t, "aff-a"), e.startPod(t, "aff-b"), e.startPod(t, "aff-c"), e.startPod(t, "aff-d")
		e.createService(t, "sticky", 80, nil, func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		})
		e.setEndpoints(t, "sticky", endpoint{a, true}, endpoint{b, true}, endpoint{c, true})
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.vip(t, "sticky"), 80))
		first := e.waitPinned(t, url, "")
		// The pinned pod dies, its endpoint goes away and a new pod takes
		// its slot in the same change: the client lands on live pods only
		// and sticks to one again.
		var keep []endpoint
		for _, p := range []*pod{a, b, c} {
			if p.name == first {
				p.stop()
			} else {
				keep = append(keep, endpoint{p, true})
			}
		}
		e.setEndpoints(t, "sticky", append(keep, endpoint{d, true})...)
		second := e.waitPinned(t, url, first)
		// The outside address is another client: it is balanced on its own.
		if got := e.namesFrom(netip.MustParseAddr(outsideClient), url, 6); len(got) != 1 {
			t.Errorf("second client not pinned: %v", got)
		}
		if again := e.names(url, 10); len(again) != 1 || again[second] != 10 {
			t.Errorf("first client moved from %s: %v", second, again)
		}
	})

	xff := e.startEcho(t, "xff")
	t.Run("http mode adds X-Forwarded-For and is ipMode Proxy", func(t *testing.T) {
		e.service(t, "web-xff", 80, map[string]string{lbconfig.AnnMode: "http"})
		e.setEndpoints(t, "web-xff", endpoint{xff, true})
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.vip(t, "web-xff"), 80))
		wait.For(t, waitTimeout, "backend sees X-Forwarded-For", func() (bool, string) {
			body, err := e.get(url)
			return err == nil && body == "xff="+inside.String(), fmt.Sprint(body, err)
		})
		if m := e.ipMode(t, "web-xff"); m != corev1.LoadBalancerIPModeProxy {
			t.Errorf("http Service ipMode %s, want Proxy", m)
		}
		if m := e.ipMode(t, "db"); m != corev1.LoadBalancerIPModeVIP {
			t.Errorf("plain TCP Service ipMode %s, want VIP", m)
		}
	})

	t.Run("accept-proxy takes the client address from the PROXY header", func(t *testing.T) {
		e.createService(t, "behind-lb", 80, map[string]string{lbconfig.AnnMode: "http", lbconfig.AnnAcceptProxy: "true"}, func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"} // the header's addresses, not the LB's
		})
		e.setEndpoints(t, "behind-lb", endpoint{xff, true})
		vip := netip.AddrPortFrom(e.vip(t, "behind-lb"), 80)
		wait.For(t, waitTimeout, "PROXY client served", func() (bool, string) {
			body, err := e.proxyGet(vip, "192.0.2.7")
			return err == nil && body == "xff=192.0.2.7", fmt.Sprint(body, err)
		})
		if body, err := e.proxyGet(vip, "198.51.100.1"); err == nil {
			t.Errorf("PROXY client outside the source ranges served %q", body)
		}
		if body, err := e.get("http://" + vip.String() + "/"); err == nil {
			t.Errorf("client without a PROXY header served %q", body)
		}
	})

	t.Run("an idle TCP connection outlives the old 50s timeout", func(t *testing.T) {
		if _, err := idleShort.roundTrip("late"); err == nil {
			t.Errorf("control: the connection with timeout-client 2s survived %v idle", time.Since(idleSince).Round(time.Second))
		}
		time.Sleep(time.Until(idleSince.Add(idleOld)))
		if _, err := idle.roundTrip("still there"); err != nil {
			t.Errorf("default timeouts: the connection idle for %v was cut: %v", time.Since(idleSince).Round(time.Second), err)
		}
	})
}

// createService creates a LoadBalancer Service with one TCP port named
// "http", adjusted by mutate.
func (e *env) createService(t testing.TB, name string, port int32, ann map[string]string, mutate func(*corev1.Service)) {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}},
	}
	mutate(s)
	if _, err := e.admin.CoreV1().Services(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

// ipMode returns the ipMode of the Service's first ingress entry.
func (e *env) ipMode(t testing.TB, name string) corev1.LoadBalancerIPMode {
	t.Helper()
	var m corev1.LoadBalancerIPMode
	wait.For(t, waitTimeout, name+" ipMode", func() (bool, string) {
		s, err := e.admin.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 || s.Status.LoadBalancer.Ingress[0].IPMode == nil {
			return false, fmt.Sprint(err)
		}
		m = *s.Status.LoadBalancer.Ingress[0].IPMode
		return true, ""
	})
	return m
}

// startEcho starts a pod that answers HTTP requests with
// "xff=<X-Forwarded-For>" and echoes lines on connections that do not
// speak HTTP.
func (e *env) startEcho(t testing.TB, name string) *pod {
	t.Helper()
	p := &pod{name: name, addr: e.podAddr(t)}
	ln, err := e.listen(p.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveEcho(c)
		}
	}()
	return p
}

// serveEcho answers one connection: HTTP requests with their
// X-Forwarded-For, anything else line by line.
func serveEcho(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return // a TCP health check
	}
	if !strings.HasPrefix(line, "GET ") {
		for ; err == nil; line, err = r.ReadString('\n') {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		return
	}
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(line), r)))
	if err != nil {
		return
	}
	body := "xff=" + req.Header.Get("X-Forwarded-For")
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// lineConn is a client connection to the echo pod through a VIP.
type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

// idleConn opens a connection to addr from the client and checks that it
// echoes, then leaves it idle.
func (e *env) idleConn(t testing.TB, addr netip.AddrPort) *lineConn {
	t.Helper()
	var lc *lineConn
	wait.For(t, waitTimeout, "echo through "+addr.String(), func() (bool, string) {
		c, err := e.dial(context.Background(), "tcp", addr.String())
		if err != nil {
			return false, err.Error()
		}
		lc = &lineConn{c: c, r: bufio.NewReader(c)}
		if _, err := lc.roundTrip("hello"); err != nil {
			c.Close()
			return false, err.Error()
		}
		return true, ""
	})
	t.Cleanup(func() { lc.c.Close() })
	return lc
}

// roundTrip sends msg as a line and reads it back.
func (lc *lineConn) roundTrip(msg string) (string, error) {
	_ = lc.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(lc.c, msg+"\n"); err != nil {
		return "", err
	}
	got, err := lc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if got = strings.TrimSuffix(got, "\n"); got != msg {
		return got, fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return got, nil
}

// dialFrom opens a TCP connection from the client namespace with source
// address src.
func (e *env) dialFrom(src netip.Addr, addr string) (net.Conn, error) {
	var c net.Conn
	err := e.l.Do(hostClient, func() error {
		var err error
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}

// getFrom fetches url from the client host's address src.
func (e *env) getFrom(src netip.Addr, url string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) { return e.dialFrom(src, addr) }}}
	return getTrimmed(client, url)
}

// namesFrom is names from the client host's address src.
func (e *env) namesFrom(src netip.Addr, url string, n int) map[string]int {
	return countNames(func() (string, error) { return e.getFrom(src, url) }, n)
}

// waitPinned waits until 10 requests in a row from the client all succeed
// and reach one pod other than not, and returns its name.
func (e *env) waitPinned(t testing.TB, url, not string) string {
	t.Helper()
	var name string
	wait.For(t, waitTimeout, "client pinned to one pod", func() (bool, string) {
		got := e.names(url, 10)
		for k, n := range got {
			name = k
			return len(got) == 1 && n == 10 && k != "" && k != not, fmt.Sprint(got)
		}
		return false, "no answers"
	})
	return name
}

// proxyGet sends an HTTP request to vip behind a PROXY v1 header that
// claims client address src, and returns the body.
func (e *env) proxyGet(vip netip.AddrPort, src string) (string, error) {
	c, err := e.dial(context.Background(), "tcp", vip.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "PROXY TCP4 %s %s 40000 %d\r\nGET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n", src, vip.Addr(), vip.Port())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	return bodyOK(resp, "PROXY request to "+vip.String())
}
