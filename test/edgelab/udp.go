package edgelab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
	http, echo := "http", "echo"
	hp, up := int32(PodPort), int32(UDPPodPort)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return l.setSlice(ctx, name, []discoveryv1.EndpointPort{
		{Name: &http, Port: &hp, Protocol: &tcp},
		{Name: &echo, Port: &up, Protocol: &udp},
	}, pods)
}

// StartUDPProbe starts probing ip:port over UDP every interval from the
// client host: one datagram each from a new socket (a new flow, so each is
// balanced afresh, as each HTTP request of StartProbe is a new
// connection); Host is the pod that answered. Close stops it.
func (l *Lab) StartUDPProbe(ip netip.Addr, port uint16, interval time.Duration) *Probe {
	target := netip.AddrPortFrom(ip, port)
	return l.startProbe("udp://"+target.String(), interval, func() Result { return l.udpEcho(target) })
}

// udpEcho sends one datagram to target from the client host and reads the
// echo.
func (l *Lab) udpEcho(target netip.AddrPort) Result {
	r := Result{Start: time.Now()}
	var c *net.UDPConn
	err := l.Do(l.Client, func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
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
	return r
}
