package edgelab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/test/wait"
)

// UDP ports of a mixed Service (CreateMixedService): clients send to the
// VIP's UDPPort, which edged forwards with nftables to every pod's
// UDPPodPort (the EndpointSlice port "echo").
const (
	UDPPort    = 5353
	UDPPodPort = 7777
)

// EnableForwarding makes every edge host a router, as configs/99-edged.conf
// does on a real one: UDP forwarded to pods needs ip_forward, and with
// clients and pods on one segment redirects are off (they would also use
// up the per-host ICMP rate limit that port unreachable answers need).
func (l *Lab) EnableForwarding() error {
	for _, e := range l.Edges {
		if out, err := l.Exec(e.Host, "sysctl", "-qw", "net.ipv4.ip_forward=1",
			"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0"); err != nil {
			return fmt.Errorf("sysctl in %s: %v: %s", e.Host.NS, err, out)
		}
	}
	return nil
}

// ServeUDPPod serves UDP echo on p's address at UDPPodPort in the pods
// host: every datagram is answered with p.Name, a space and the datagram.
func (l *Lab) ServeUDPPod(p Pod) error {
	if l.pods == nil {
		return fmt.Errorf("no pods host: the lab runs without Options.HAProxy")
	}
	addr := netip.AddrPortFrom(p.Addr.Addr(), UDPPodPort)
	var c *net.UDPConn
	if err := l.Do(l.pods, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		return fmt.Errorf("udp pod %s on %s: %w", p.Name, addr, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(append([]byte(p.Name+" "), buf[:n]...), from)
		}
	}()
	l.onClose(func() { c.Close() })
	return nil
}

// CreateMixedService creates a LoadBalancer Service with an HTTP port
// (ProbePort/TCP, through HAProxy) and a UDP port (UDPPort, forwarded by
// nftables) on one IP, and waits until edged wrote its address.
func (l *Lab) CreateMixedService(ctx context.Context, name string) (netip.Addr, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.kube.ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: ProbePort, Protocol: corev1.ProtocolTCP},
				{Name: "echo", Port: UDPPort, Protocol: corev1.ProtocolUDP},
			},
		},
	}
	cs := l.kube.client.CoreV1().Services(l.kube.ns)
	if _, err := cs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s: %w", name, err)
	}
	var ip netip.Addr
	err := wait.Until(allocTimeout, "service "+name+" has an ingress IP", func() (bool, string) {
		got, err := cs.Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(got.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprint(err)
		}
		ip, err = netip.ParseAddr(got.Status.LoadBalancer.Ingress[0].IP)
		return err == nil, fmt.Sprint(err)
	})
	return ip, err
}

// SetSourceRanges sets spec.loadBalancerSourceRanges of Service name.
func (l *Lab) SetSourceRanges(ctx context.Context, name string, ranges ...string) error {
	cs := l.kube.client.CoreV1().Services(l.kube.ns)
	svc, err := cs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	svc.Spec.LoadBalancerSourceRanges = ranges
	_, err = cs.Update(ctx, svc, metav1.UpdateOptions{})
	return err
}

// SetMixedEndpoints creates or replaces the EndpointSlice of a Service
// made by CreateMixedService: one ready endpoint per pod, "http" on
// PodPort/TCP and "echo" on UDPPodPort/UDP.
func (l *Lab) SetMixedEndpoints(ctx context.Context, name string, pods ...Pod) error {
	ready := true
	http, echo := "http", "echo"
	hp, up := int32(PodPort), int32(UDPPodPort)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: l.kube.ns, Name: name + "-lab", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: &http, Port: &hp, Protocol: &tcp},
			{Name: &echo, Port: &up, Protocol: &udp},
		},
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

// UDPProbe is Probe for UDP: from the client host it sends one datagram
// every interval, each from a new socket (a new flow, so each is balanced
// afresh, as each of Probe's requests is a new connection), and records
// every Result; Host is the pod that answered.
type UDPProbe struct {
	l      *Lab
	target netip.AddrPort
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	results []Result
}

// StartUDPProbe starts probing ip:port every interval; Close stops it.
func (l *Lab) StartUDPProbe(ip netip.Addr, port uint16, interval time.Duration) *UDPProbe {
	p := &UDPProbe{l: l, target: netip.AddrPortFrom(ip, port), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			p.wg.Add(1)
			go p.one()
		}
	}()
	l.onClose(p.Stop)
	return p
}

func (p *UDPProbe) one() {
	defer p.wg.Done()
	r := Result{Start: time.Now()}
	var c *net.UDPConn
	err := p.l.Do(p.l.Client, func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.target))
		return err
	})
	if err == nil {
		defer c.Close()
		msg := fmt.Sprint(r.Start.UnixNano())
		_ = c.SetDeadline(r.Start.Add(probeTimeout))
		buf := make([]byte, 1500)
		var n int
		if _, err = c.Write([]byte(msg)); err == nil {
			n, err = c.Read(buf)
		}
		host, echoed, _ := strings.Cut(string(buf[:n]), " ")
		r.OK, r.Host = err == nil && echoed == msg, host
	}
	r.End = time.Now()
	p.mu.Lock()
	p.results = append(p.results, r)
	p.mu.Unlock()
}

// Stop stops sending and waits for the datagrams in flight.
func (p *UDPProbe) Stop() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// Results returns a copy of the results so far, by start time.
func (p *UDPProbe) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]Result(nil), p.results...)
	sortResults(out)
	return out
}

// WaitOK waits up to d until the last n finished datagrams were answered.
func (p *UDPProbe) WaitOK(n int, d time.Duration) error {
	return wait.Until(d, fmt.Sprintf("%d UDP answers in a row from %v", n, p.target), func() (bool, string) {
		rs := p.Results()
		if len(rs) < n {
			return false, fmt.Sprintf("%d sent", len(rs))
		}
		for _, r := range rs[len(rs)-n:] {
			if !r.OK {
				return false, fmt.Sprintf("%d sent, recent ones unanswered", len(rs))
			}
		}
		return true, ""
	})
}

// WaitFailing waits up to d until the last n finished datagrams all went
// unanswered (a refused source, a withdrawn port).
func (p *UDPProbe) WaitFailing(n int, d time.Duration) error {
	return wait.Until(d, fmt.Sprintf("%d unanswered datagrams in a row to %v", n, p.target), func() (bool, string) {
		rs := p.Results()
		if len(rs) < n {
			return false, ""
		}
		for _, r := range rs[len(rs)-n:] {
			if r.OK {
				return false, "still answered"
			}
		}
		return true, ""
	})
}

// WaitRecovered waits up to d until a datagram sent after since was
// answered.
func (p *UDPProbe) WaitRecovered(since time.Time, d time.Duration) error {
	return wait.Until(d, fmt.Sprintf("a UDP answer from %v after the fault", p.target), func() (bool, string) {
		for _, r := range p.Results() {
			if r.OK && !r.Start.Before(since) {
				return true, ""
			}
		}
		return false, ""
	})
}

// sortResults orders results by start time.
func sortResults(rs []Result) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start.Before(rs[j].Start) })
}
