package raft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Connection kinds: the first byte after the (TLS) handshake says whether
// a connection carries raft RPCs or lease renewals, so both share one port.
const (
	connRaft  byte = 'R'
	connLease byte = 'L'
)

// handshakeTimeout bounds a peer's TLS handshake and kind byte, so a silent
// connection cannot hold an accept slot.
const handshakeTimeout = 5 * time.Second

// errListenerClosed is returned by Accept after Close.
var errListenerClosed = errors.New("raft listener closed")

// stream is a hraft.StreamLayer over TCP with optional mutual TLS that also
// routes lease connections to a handler.
type stream struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	log       *slog.Logger
	onLease   func(net.Conn)
	raftConns chan net.Conn
	closed    chan struct{}
	connsMu   sync.Mutex
	conns     map[net.Conn]struct{}
	once      sync.Once
	wg        sync.WaitGroup

	// handshaking counts connections holding an unauthenticated slot
	// (acceptLoop); refused counts those closed because none was free.
	handshaking atomic.Int32
	refused     atomic.Uint64
	warnLim     logLimiter

	// ident is sent after the kind byte and checked on accept (nil: none).
	ident *identity
}

var _ hraft.StreamLayer = (*stream)(nil)

func newStream(cfg Config, server, client *tls.Config) (*stream, error) {
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.BindAddr, err)
	}
	var adv net.Addr = ln.Addr()
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("%w: advertiseAddress %q: %v", ErrConfig, cfg.AdvertiseAddr, err)
		}
		adv = a
	}
	s := &stream{ln: ln, advertise: adv, server: server, client: client, dial: cfg.DialContext,
		log: cfg.Logger, raftConns: make(chan net.Conn), closed: make(chan struct{}),
		conns: map[net.Conn]struct{}{}}
	return s, nil
}

func (s *stream) start(onLease func(net.Conn)) {
	s.onLease = onLease
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *stream) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			s.log.Warn("raft accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // back off on e.g. EMFILE
			continue
		}
		release, ok := s.acquireSlot()
		if !ok {
			s.refuseFull(c)
			continue
		}
		if !s.track(c) {
			release()
			c.Close()
			return
		}
		go func() {
			defer release()
			s.route(&slotConn{Conn: c, release: release})
		}()
	}
}

// maxUnauthenticated bounds the connections that may be in their TLS
// handshake or preamble (kind byte, cluster ID) at once; more are closed at
// once. A group has a handful of hosts and each opens a few connections to
// a peer at a time (hashicorp/raft's transport pools up to MaxPool=3 plus
// its pipeline, and one lease connection), so 64 lets a dozen hosts
// reconnect together, while a flood of silent connections costs at most 64
// goroutines and handshake buffers, each for at most handshakeTimeout.
// Connections past this phase are authenticated and not counted. A flood
// can still delay new connections of real peers until its own connections
// time out; established ones are not affected.
const maxUnauthenticated = 64

// acquireSlot takes one of the maxUnauthenticated slots. It reports false
// when none is free; otherwise release (idempotent) gives it back.
func (s *stream) acquireSlot() (release func(), ok bool) {
	if s.handshaking.Add(1) > maxUnauthenticated {
		s.handshaking.Add(-1)
		return nil, false
	}
	return sync.OnceFunc(func() { s.handshaking.Add(-1) }), true
}

// refuseFull closes a connection that found no free slot: logged at Debug,
// and at Warn at most once per logEvery with the count so far.
func (s *stream) refuseFull(c net.Conn) {
	n := s.refused.Add(1)
	remote := c.RemoteAddr().String()
	c.Close()
	s.log.Debug("raft connection refused: too many unauthenticated connections", "remote", remote)
	if s.warnLim.allow("full", time.Now()) {
		s.log.Warn("raft connections refused: too many in TLS handshake at once (a flood of silent connections?)",
			"limit", maxUnauthenticated, "refusedTotal", n, "remote", remote)
	}
}

// slotConn is an accepted connection holding an unauthenticated slot. The
// slot is released when route clears the handshakeTimeout deadline, which
// it does once the peer is authenticated and its preamble read (tls.Conn
// passes SetDeadline through to this conn), or when route returns,
// whichever comes first; so a connection holds it at most about
// handshakeTimeout. This keeps route's signature as it is; should route
// stop clearing the deadline, slots would be held until route returns.
type slotConn struct {
	net.Conn
	release func()
}

// SetDeadline sets the deadline and releases the slot when it clears it.
func (c *slotConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	if t.IsZero() {
		c.release()
	}
	return err
}

// route authenticates a new connection and hands it to raft or the lease
// handler. A peer whose certificate does not verify is refused and logged;
// so is one whose cluster ID (sent after the kind byte, see identity.admit)
// names another raft group.
func (s *stream) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if s.server != nil {
		tc := tls.Server(c, s.server)
		if err := tc.Handshake(); err != nil {
			lvl := slog.LevelDebug // a peer that hung up mid-handshake
			if certProblem(err) {
				lvl = slog.LevelWarn
			}
			s.log.Log(context.Background(), lvl, "raft peer refused: TLS handshake failed (is its certificate signed by our CA?)",
				"remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	peer, err := readPeerID(c)
	if err != nil {
		c.Close()
		return
	}
	if err := s.ident.admit(peer, b[0]); err != nil {
		s.ident.refuse(c.RemoteAddr(), err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch b[0] {
	case connRaft:
		select {
		case s.raftConns <- c:
		case <-s.closed:
			c.Close()
		}
	case connLease:
		if s.onLease != nil {
			s.onLease(c)
		}
		c.Close()
	default:
		s.log.Warn("raft peer refused: unknown connection kind", "remote", c.RemoteAddr().String())
		c.Close()
	}
}

// track remembers an accepted connection so Close can cut it, as a crash
// would; it reports false once closed.
func (s *stream) track(c net.Conn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns == nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Accept returns the next authenticated raft connection.
func (s *stream) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftConns:
		return c, nil
	case <-s.closed:
		return nil, errListenerClosed
	}
}

// Close stops accepting; established connections are closed by their owners.
func (s *stream) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.ln.Close()
		s.connsMu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.connsMu.Unlock()
	})
	return nil
}

// Addr is the advertised address peers dial.
func (s *stream) Addr() net.Addr { return s.advertise }

// Dial opens a raft connection to a peer.
func (s *stream) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dialKind(ctx, string(addr), connRaft)
}

func (s *stream) dialKind(ctx context.Context, addr string, k byte) (net.Conn, error) {
	c, err := s.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.client != nil {
		tc := tls.Client(c, s.client)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			if certProblem(err) {
				s.log.Warn("raft peer refused: its certificate is not signed by our CA", "remote", addr, "err", err)
			}
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write(preamble(k, s.ident.current())); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// certProblem reports whether a handshake failed over a certificate (as
// opposed to a peer that went away), so only those are logged as warnings.
func certProblem(err error) bool {
	var ae tls.AlertError
	var ve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	return errors.As(err, &ae) || errors.As(err, &ve) || errors.As(err, &ue) || errors.Is(err, errUnknownCA) ||
		strings.Contains(err.Error(), "certificate") // TLS alerts from the peer arrive as plain errors
}
