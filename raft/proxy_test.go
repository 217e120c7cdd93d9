package raft

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// netProxy is a set of TCP proxies, one per ordered pair of hosts, that can
// cut traffic between chosen hosts. Host A reaches host B only through
// proxy (A,B), so blocking a pair drops every connection between them.
type netProxy struct {
	mu      sync.Mutex
	targets map[string]string          // host -> real address
	lns     map[[2]string]net.Listener // (from,to) -> listener
	conns   map[[2]string][]net.Conn   // live connections per pair
	blocked map[[2]string]bool
	// delay holds every chunk sent from one host to another this long
	// before passing it on (message delay; order is kept).
	delay map[[2]string]time.Duration
	// blackhole makes a partition swallow bytes silently (connections hang,
	// as with a pulled cable) instead of resetting connections.
	blackhole bool
	wg        sync.WaitGroup
}

func newNetProxy(t testing.TB) *netProxy {
	p := &netProxy{targets: map[string]string{}, lns: map[[2]string]net.Listener{},
		conns: map[[2]string][]net.Conn{}, blocked: map[[2]string]bool{}, delay: map[[2]string]time.Duration{}}
	t.Cleanup(p.close)
	return p
}

// addTarget registers host's real address.
func (p *netProxy) addTarget(host, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets[host] = addr
}

// dialer returns host from's DialContext: addresses of known hosts go
// through the pair's proxy.
func (p *netProxy) dialer(from string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		via := p.route(from, addr)
		var d net.Dialer
		return d.DialContext(ctx, network, via)
	}
}

func (p *netProxy) route(from, addr string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	to := ""
	for h, a := range p.targets {
		if a == addr {
			to = h
		}
	}
	if to == "" {
		return addr
	}
	key := [2]string{from, to}
	ln, ok := p.lns[key]
	if !ok {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return addr
		}
		p.lns[key] = ln
		p.wg.Add(1)
		go p.serve(key, ln)
	}
	return ln.Addr().String()
}

func (p *netProxy) serve(key [2]string, ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, blocked := p.targets[key[1]], p.blocked[key]
		p.mu.Unlock()
		if blocked && !p.blackhole {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[key] = append(p.conns[key], c, up)
		p.mu.Unlock()
		go p.pipe(key, c, up)
		go p.pipe(key, up, c)
	}
}

// pipe copies src to dst while the pair is not blocked; in blackhole mode
// bytes read during a partition are dropped.
func (p *netProxy) pipe(key [2]string, dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop, d := p.blocked[key], p.delay[key]
			p.mu.Unlock()
			if d > 0 {
				time.Sleep(d) // the message delay itself
			}
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// partition cuts traffic between a and b in both directions.
func (p *netProxy) partition(a, b string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range [][2]string{{a, b}, {b, a}} {
		p.blocked[k] = true
		if p.blackhole {
			continue
		}
		for _, c := range p.conns[k] {
			c.Close()
		}
		p.conns[k] = nil
	}
}

// isolate cuts host h off from every other host.
func (p *netProxy) isolate(h string, hosts []string) {
	for _, o := range hosts {
		if o != h {
			p.partition(h, o)
		}
	}
}

// slow delays traffic between a and b by d in both directions.
func (p *netProxy) slow(a, b string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay[[2]string{a, b}] = d
	p.delay[[2]string{b, a}] = d
}

// heal restores all traffic, without delay.
func (p *netProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = map[[2]string]bool{}
	p.delay = map[[2]string]time.Duration{}
}

func (p *netProxy) close() {
	p.mu.Lock()
	for _, ln := range p.lns {
		ln.Close()
	}
	for _, cs := range p.conns {
		for _, c := range cs {
			c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}
