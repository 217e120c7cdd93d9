package edgelab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ProbePort is the port of the Services and of the probe's HTTP servers.
const ProbePort = 80

// ServeVIP starts an HTTP server bound on ip:ProbePort in every edge host
// (IP_FREEBIND, as HAProxy binds VIPs it does not hold yet). It answers with
// the host's name, so the probe sees who served. The kernel delivers to it
// only on the host that has ip on an interface (edged: lo, keepalived: eth0).
func (l *Lab) ServeVIP(ip netip.Addr) error {
	for _, e := range l.Edges {
		name := e.Name
		var ln net.Listener
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		if err := l.Do(e.Host, func() error {
			var err error
			ln, err = lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(ip, ProbePort).String())
			return err
		}); err != nil {
			return fmt.Errorf("listen on %s in %s: %w", ip, e.NS, err)
		}
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				fmt.Fprint(w, name)
			}),
			ReadHeaderTimeout: 2 * time.Second,
		}
		go func() { _ = srv.Serve(ln) }()
		l.onClose(func() { _ = srv.Close() })
	}
	return nil
}
