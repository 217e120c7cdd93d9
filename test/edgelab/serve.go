package edgelab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/goldentooth/edged/test/vipprobe"
)

// ProbePort is the port of the Services and of the probe's HTTP servers.
const ProbePort = 80

// ServeVIP starts an HTTP server bound on ip:ProbePort in every edge host
// (vipprobe.Listen: IP_FREEBIND, as HAProxy binds VIPs it does not hold yet,
// or a vipprobe process: Options.ProbeProcesses). It answers with
// the host's name, so the probe sees who served. The kernel delivers to it
// only on the host that has ip on an interface (edged: lo, keepalived: eth0).
func (l *Lab) ServeVIP(ip netip.Addr) error {
	if l.opts.ProbeProcesses {
		return l.serveVIPProcesses(ip)
	}
	for _, e := range l.Edges {
		var ln net.Listener
		if err := l.Do(e.Host, func() error {
			var err error
			ln, err = vipprobe.Listen(netip.AddrPortFrom(ip, ProbePort))
			return err
		}); err != nil {
			return fmt.Errorf("listen on %s in %s: %w", ip, e.NS, err)
		}
		srv := vipprobe.NewServer(e.Name)
		go func() { _ = srv.Serve(ln) }()
		l.onClose(func() { _ = srv.Close() })
	}
	return nil
}
