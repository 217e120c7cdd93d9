package edgelab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// PodPort is the port every pod server listens on (an EndpointSlice port).
const PodPort = 8080

// Pod addresses: pod i gets 10.77.0.(podFirst+i) on the pods host's eth0,
// below the pool (PoolRange starts at .200) and above the hosts (.1-.5).
const (
	podFirst = 20
	podMax   = 150
)

// Pod is an HTTP server on the pods host that answers every request with
// its name, standing in for a Service's pod.
type Pod struct {
	// Name is what the server answers.
	Name string
	// Addr is where it listens.
	Addr netip.AddrPort
}

// Pods is the pods host (nil without Options.HAProxy): where Pod servers
// and NodePort listeners live, on the segment every edge host reaches.
func (l *Lab) Pods() *Host { return l.pods }

// StartPod starts a pod server on a fresh address of the pods host; Close
// stops it.
func (l *Lab) StartPod(name string) (Pod, error) {
	if l.pods == nil {
		return Pod{}, fmt.Errorf("no pods host: the lab runs without Options.HAProxy")
	}
	l.mu.Lock()
	n := l.nextPod
	l.nextPod++
	l.mu.Unlock()
	if n >= podMax {
		return Pod{}, fmt.Errorf("more than %d pods", podMax)
	}
	ip := netip.AddrFrom4([4]byte{10, 77, 0, byte(podFirst + n)})
	link, err := l.pods.nl.LinkByName("eth0")
	if err != nil {
		return Pod{}, err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	if err := l.pods.nl.AddrAdd(link, a); err != nil {
		return Pod{}, fmt.Errorf("%s: add %s: %w", l.pods.NS, ip, err)
	}
	p := Pod{Name: name, Addr: netip.AddrPortFrom(ip, PodPort)}
	return p, l.ServePod(p)
}

// ServePod serves p.Name on p.Addr in the pods host (for an address the
// host already has, e.g. its own on a NodePort).
func (l *Lab) ServePod(p Pod) error {
	if l.pods == nil {
		return fmt.Errorf("no pods host: the lab runs without Options.HAProxy")
	}
	var ln net.Listener
	if err := l.Do(l.pods, func() error {
		var err error
		ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", p.Addr.String())
		return err
	}); err != nil {
		return fmt.Errorf("pod %s on %s: %w", p.Name, p.Addr, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, p.Name)
		}),
		ReadHeaderTimeout: 2 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	l.onClose(func() { _ = srv.Close() })
	return nil
}
