package announce

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// port is one served interface: its sockets, the bursts still due on it and
// the multicast groups it joined.
type port struct {
	a    *Responder
	name string
	link *linkReader
	arp  *arp.Client
	ndp  *ndp.Conn

	mu     sync.Mutex
	due    map[netip.Addr]burst
	groups map[netip.Addr]bool // solicited-node groups joined, owned by loop
	kick   chan struct{}
	err    error
}

// burst is what is left of one IP's takeover burst.
type burst struct {
	left int
	at   time.Time
}

// takeover schedules a burst for ips and wakes the loop (which also
// re-syncs multicast groups with the leases).
func (p *port) takeover(ips []netip.Addr, now time.Time) {
	p.mu.Lock()
	for _, ip := range ips {
		if p.a.opts.count > 0 {
			p.due[ip] = burst{left: p.a.opts.count, at: now}
		}
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// loop sends bursts and refreshes until ctx ends.
func (p *port) loop(ctx context.Context) {
	o := p.a.opts
	nextRefresh := time.Now().Add(o.refresh)
	wasUp := p.link.read().Up
	t := time.NewTimer(0)
	defer t.Stop()
	defer p.leaveAll()
	for {
		now := time.Now()
		ifc, gone := p.link.state()
		if gone {
			// Its sockets are bound to an index that no longer exists; a
			// link created again under the same name gets a new one.
			p.fail(fmt.Errorf("interface %s: %w", p.name, ErrInterfaceGone))
			return
		}
		p.syncGroups(now)
		if ifc.Up && !wasUp {
			p.takeover(p.a.heldOn(p.name, now), now) // link back: announce again
		}
		wasUp = ifc.Up
		next := now.Add(linkPoll)
		if o.refresh > 0 && !now.Before(nextRefresh) {
			for _, ip := range p.a.heldOn(p.name, now) {
				p.announce(ip, ifc)
			}
			nextRefresh = now.Add(o.refresh)
		}
		if o.refresh > 0 && nextRefresh.Before(next) {
			next = nextRefresh
		}
		if at, ok := p.sendDue(now, ifc); ok && at.Before(next) {
			next = at
		}
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
	}
}

// sendDue sends the burst frames due at now and returns when the next is due.
func (p *port) sendDue(now time.Time, ifc Iface) (time.Time, bool) {
	p.mu.Lock()
	var send []netip.Addr
	var next time.Time
	for ip, b := range p.due {
		if !now.Before(b.at) {
			send = append(send, ip)
			b.left--
			b.at = now.Add(p.a.opts.interval)
			if b.left <= 0 {
				delete(p.due, ip)
				continue
			}
			p.due[ip] = b
		}
		if next.IsZero() || b.at.Before(next) {
			next = b.at
		}
	}
	p.mu.Unlock()
	for _, ip := range send {
		if !p.announce(ip, ifc) {
			p.mu.Lock()
			delete(p.due, ip) // lease gone: the rest of the burst is void
			p.mu.Unlock()
		}
	}
	return next, !next.IsZero()
}

// announce sends one gratuitous frame for ip if ip is held and the link may
// carry it; it reports whether ip is still held.
func (p *port) announce(ip netip.Addr, ifc Iface) bool {
	if !ifc.Up || ifc.NoARP || ifc.BondMember {
		return true
	}
	var send func() error
	switch {
	case ip.Is4() && p.arp != nil:
		send = func() error {
			g, err := gratuitous(ifc.HW, ip)
			if err != nil {
				return err
			}
			_ = p.arp.SetWriteDeadline(time.Now().Add(writeTimeout))
			return p.arp.WriteTo(g, ethernet.Broadcast)
		}
	case ip.Is6() && p.ndp != nil:
		send = func() error {
			_ = p.ndp.SetWriteDeadline(time.Now().Add(writeTimeout))
			return p.writeNDP(advertisement(ifc.HW, ip, false), allNodes)
		}
	default:
		return true
	}
	sent, err := p.a.whileHeld(ip, p.name, send)
	switch {
	case err != nil:
		p.a.opts.log.Warn("gratuitous announcement", "interface", p.name, "ip", ip, "err", err)
	case sent:
		countGratuitous(ip.String())
	}
	return sent || err != nil
}

// syncGroups joins the solicited-node group of every held IPv6 VIP and
// leaves the groups no held VIP needs any more.
func (p *port) syncGroups(now time.Time) {
	if p.ndp == nil {
		return
	}
	want := map[netip.Addr]bool{}
	v6 := func(ip netip.Addr) bool { return ip.Is6() && !ip.Is4In6() }
	for _, ip := range p.a.heldWhere(p.name, now, v6) {
		if g, err := ndp.SolicitedNodeMulticast(ip); err == nil {
			want[g] = true
		}
	}
	for g := range want {
		if !p.groups[g] {
			if err := p.ndp.JoinGroup(g); err != nil {
				p.a.opts.log.Warn("join solicited-node group", "interface", p.name, "group", g, "err", err)
				continue
			}
			p.groups[g] = true
		}
	}
	for g := range p.groups {
		if !want[g] {
			if err := p.ndp.LeaveGroup(g); err != nil {
				p.a.opts.log.Warn("leave solicited-node group", "interface", p.name, "group", g, "err", err)
			}
			delete(p.groups, g)
		}
	}
}

func (p *port) leaveAll() {
	for g := range p.groups {
		_ = p.ndp.LeaveGroup(g)
		delete(p.groups, g)
	}
}
