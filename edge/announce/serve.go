package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// writeTimeout bounds one frame write, which happens with the leases locked
// for reading.
const writeTimeout = 100 * time.Millisecond

// ErrInterfaceGone ends Serve when its interface is deleted.
var ErrInterfaceGone = errors.New("interface deleted")

// Retry bounds of Run: the first retry after a second, doubling up to 30 s
// while Serve fails at once (the interface is missing), back to a second
// after a Serve that ran (the interface was deleted and may come back).
const (
	serveRetryMin = time.Second
	serveRetryMax = 30 * time.Second
)

// Run serves ifname like Serve until ctx ends, and serves it again when
// Serve ends early: the interface did not exist yet, failed, or was deleted
// and created again (a new index, so new sockets). It logs every retry.
func (a *Responder) Run(ctx context.Context, ifname string) {
	wait := serveRetryMin
	for {
		start := time.Now()
		err := a.Serve(ctx, ifname)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= serveRetryMin {
			wait = serveRetryMin
		}
		a.opts.log.Warn("not announcing on interface; trying again", "interface", ifname, "err", err, "retry", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, serveRetryMax)
	}
}

// Serve announces the held IPs on the named interface until ctx ends: it
// answers ARP requests (when the interface has an IPv4 address, which
// mdlayher/arp needs) and Neighbor Solicitations (when it has IPv6), and
// sends gratuitous ARP / unsolicited Neighbor Advertisements on takeover,
// every refresh interval, and when the link comes back up. Call it in the
// network namespace of the interface; everything it opens stays there.
func (a *Responder) Serve(ctx context.Context, ifname string) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	lr, err := newLinkReader(ifi.Index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	defer lr.close()
	p := &port{a: a, name: ifname, link: lr, kick: make(chan struct{}, 1), due: map[netip.Addr]burst{}, groups: map[netip.Addr]bool{}}
	var errs []error
	if p.arp, err = arp.Dial(ifi); err != nil {
		errs = append(errs, fmt.Errorf("arp on %s: %w", ifname, err))
	}
	if p.ndp, err = listenNDP(ifi); err != nil {
		errs = append(errs, fmt.Errorf("ndp on %s: %w", ifname, err))
	}
	if p.arp == nil && p.ndp == nil {
		return errors.Join(errs...)
	}
	for _, e := range errs {
		a.opts.log.Debug("announcing one family only", "interface", ifname, "err", e)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if p.arp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); defer cancel(); p.readARP(ctx) }()
	}
	if p.ndp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); defer cancel(); p.readNDP(ctx) }()
	}
	if err := lr.watch(ctx, func() { p.takeover(nil, time.Now()) }); err != nil {
		a.opts.log.Warn("link changes are polled only", "interface", ifname, "poll", linkPoll, "err", err)
	}
	a.mu.Lock()
	a.ports[p] = struct{}{}
	a.mu.Unlock()
	p.takeover(a.heldOn(ifname, time.Now()), time.Now())
	p.loop(ctx)
	a.mu.Lock()
	delete(a.ports, p)
	a.mu.Unlock()
	if p.arp != nil {
		p.arp.Close()
	}
	if p.ndp != nil {
		p.ndp.Close()
	}
	wg.Wait()
	return p.err
}

// listenNDP opens an ICMPv6 socket for Neighbor Solicitations on ifi. It is
// bound to the unspecified address, not a link-local one, so unicast probes
// addressed to a VIP (neighbour unreachability detection) reach it too;
// frames of other interfaces are dropped by their control message.
func listenNDP(ifi *net.Interface) (*ndp.Conn, error) {
	c, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return nil, err
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("icmp filter: %w", err)
	}
	if err := c.SetControlMessage(ipv6.FlagInterface|ipv6.FlagHopLimit, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("control messages: %w", err)
	}
	return c, nil
}

// readARP answers ARP requests until the socket closes.
func (p *port) readARP(ctx context.Context) {
	for {
		_, ef, err := p.arp.Read()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, net.ErrClosed) {
			p.fail(fmt.Errorf("arp read %s: %w", p.name, err))
			return
		}
		if err != nil {
			// mdlayher/arp reports malformed frames per frame; a socket
			// error (say, the interface went away) is retried, not spun on.
			p.pauseOnSocketError(ctx, err)
			continue
		}
		b, err := ef.MarshalBinary()
		if err != nil {
			continue
		}
		// The link is read per frame so a downed link stops answers at once.
		reply, _ := p.a.handleARP(b, time.Now(), p.link.read())
		if reply == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(reply.SenderIP.AsSlice())
		sent, err := p.a.whileHeld(ip, p.name, func() error {
			_ = p.arp.SetWriteDeadline(time.Now().Add(writeTimeout))
			return p.arp.WriteTo(reply, reply.TargetHardwareAddr)
		})
		if sent && err == nil {
			countResponse(ip.String())
		}
	}
}

// readNDP answers Neighbor Solicitations until the socket closes.
func (p *port) readNDP(ctx context.Context) {
	b := make([]byte, 1500)
	for {
		n, cm, src, err := p.ndp.ReadRaw(b)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, net.ErrClosed) {
			p.fail(fmt.Errorf("ndp read %s: %w", p.name, err))
			return
		}
		if err != nil {
			p.pauseOnSocketError(ctx, err)
			continue
		}
		if cm == nil {
			continue
		}
		if cm.IfIndex != p.link.index {
			continue // the socket is not bound to a device
		}
		na, dst, _ := p.a.handleNDP(b[:n], src, cm.HopLimit, time.Now(), p.link.read())
		if na == nil {
			continue
		}
		sent, err := p.a.whileHeld(na.TargetAddress, p.name, func() error {
			_ = p.ndp.SetWriteDeadline(time.Now().Add(writeTimeout))
			return p.writeNDP(na, dst)
		})
		if sent && err == nil {
			countResponse(na.TargetAddress.String())
		}
	}
}

// writeNDP sends na to dst from na's target address, as the kernel does for
// its own addresses (ndisc6, for one, ignores an advertisement from another
// source). The kernel refuses that source while the VIP is not on lo; then
// it picks the source itself, which Linux neighbour caches accept as well.
func (p *port) writeNDP(na *ndp.NeighborAdvertisement, dst netip.Addr) error {
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: na.TargetAddress.AsSlice(), IfIndex: p.link.index}
	if err := p.ndp.WriteTo(na, cm, dst); err == nil {
		return nil
	}
	return p.ndp.WriteTo(na, nil, dst)
}

// socketRetry is the pause after a socket read error before reading again.
const socketRetry = 100 * time.Millisecond

// pauseOnSocketError waits socketRetry (or until ctx ends) if err is a
// socket error rather than a malformed frame, and logs it.
func (p *port) pauseOnSocketError(ctx context.Context, err error) {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return
	}
	p.a.opts.log.Warn("read from raw socket", "interface", p.name, "err", err)
	t := time.NewTimer(socketRetry)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (p *port) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}
