package raft

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// renewRequest is what a host sends the leader to renew its leases.
type renewRequest struct {
	From string `json:"from"`
	// Term is the sender's raft term; a leader of another term refuses, so a
	// deposed leader cannot count voters of the new term toward its quorum.
	Term uint64 `json:"term"`
	// Held is every IP the sender holds a lease for when it sends this.
	Held     []netip.Addr `json:"held"`
	Draining bool         `json:"draining"`
	Leave    bool         `json:"leave"`
	// Ack echoes the Seq of the last response received on this connection.
	// The leader counts the host as in contact at the time it SENT that
	// response, which is certainly before the host could have moved to a
	// newer term; a delayed request can therefore not extend a deposed
	// leader's quorum past the next election.
	Ack uint64 `json:"ack"`
	// Incarnation numbers the sending process (fixed from Open) and ReqSeq
	// this request among all it sent (over any connection, to any
	// leader); the leader handles only requests newer than the last it
	// handled from From (see admitRequest). 0 marks a sender without numbers.
	Incarnation uint64 `json:"incarnation,omitempty"`
	ReqSeq      uint64 `json:"reqSeq,omitempty"`
}

// renewResponse grants leases. OK=false changes nothing on the host: its
// existing leases simply run out.
type renewResponse struct {
	OK     bool         `json:"ok"`
	Reason string       `json:"reason,omitempty"`
	IPs    []netip.Addr `json:"ips"`
	Member bool         `json:"member"`
	Seq    uint64       `json:"seq"`
}

// renewRetry is how soon a refused or failed renewal is retried: right
// after an election the new leader needs two round trips before it counts
// a host toward its quorum, and every millisecond here is announcement
// time when the old leases are running out.
const renewRetry = 10 * time.Millisecond

// minRenewGap keeps change-triggered renewals from flooding the leader when
// many commands apply in a burst.
const minRenewGap = 5 * time.Millisecond

// leaseClient holds the connection to the leader's lease endpoint.
type leaseClient struct {
	mu   sync.Mutex
	addr string
	conn net.Conn
	enc  *json.Encoder
	dec  *json.Decoder
	last time.Time
	ack  uint64 // Seq of the last response on conn
}

func (s *Store) renewLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.LeaseDuration / 4)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-s.stop:
			s.lc.close()
			return
		case <-t.C:
		case <-s.renewNow:
		case <-retry.C:
		}
		_, ok := s.renewOnce()
		s.met.renewal(ok)
		if !ok {
			retry.Reset(renewRetry)
		}
	}
}

// renewOnce sends one renewal and installs the answer. It reports whether
// the leader answered OK.
func (s *Store) renewOnce() (renewResponse, bool) {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	if gap := time.Since(s.lc.last); gap < minRenewGap {
		time.Sleep(minRenewGap - gap)
	}
	t0 := time.Now()
	s.lc.last = t0
	req := renewRequest{From: s.cfg.NodeID, Term: s.raft.CurrentTerm(), Held: s.heldIPs(t0),
		Draining: s.wantsDrain(), Leave: s.leaving.Load(), Incarnation: s.incarnation, ReqSeq: s.reqSeq.Add(1)}
	var resp renewResponse
	if s.raft.State() == hraft.Leader {
		resp = s.grant(req)
	} else {
		addr, id := s.raft.LeaderWithID()
		if id == "" {
			return resp, false
		}
		var err error
		resp, err = s.lc.call(s, string(addr), req, t0.Add(s.cfg.LeaseDuration))
		if err != nil {
			s.cfg.Logger.Debug("lease renewal failed", "leader", string(id), "err", err)
			return resp, false
		}
	}
	if !resp.OK {
		return resp, false
	}
	s.installLeases(t0, resp.IPs)
	s.subs.Notify()
	return resp, true
}

func (c *leaseClient) call(s *Store, addr string, req renewRequest, deadline time.Time) (renewResponse, error) {
	var resp renewResponse
	if c.conn != nil && c.addr != addr {
		c.close()
	}
	if c.conn == nil {
		ctx, cancel := contextWithDeadline(deadline)
		conn, err := s.stream.dialKind(ctx, addr, connLease)
		cancel()
		if err != nil {
			return resp, fmt.Errorf("dial %s: %w", addr, err)
		}
		c.conn, c.addr, c.ack = conn, addr, 0
		c.enc, c.dec = json.NewEncoder(conn), json.NewDecoder(conn)
	}
	_ = c.conn.SetDeadline(deadline)
	req.Ack = c.ack
	if err := c.enc.Encode(req); err != nil {
		c.close()
		return resp, err
	}
	if err := c.dec.Decode(&resp); err != nil {
		c.close()
		return resp, err
	}
	c.ack = resp.Seq
	return resp, nil
}

func (c *leaseClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// heldIPs lists the IPs this host holds a lease for at now, sorted; the
// slice is shared and must not be modified.
func (s *Store) heldIPs(now time.Time) []netip.Addr {
	ips, _ := s.LeaseSet(now)
	return ips
}

// installLeases replaces the lease table with a grant answered to a request
// sent at t0: each granted IP (ips, sorted) is held until t0+LeaseDuration,
// and IPs not in the grant are dropped at once. A renewal of the same set,
// the common case, only moves the end.
func (s *Store) installLeases(t0 time.Time, ips []netip.Addr) {
	until := t0.Add(s.cfg.LeaseDuration)
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := time.Now()
	if !until.After(now) {
		return
	}
	obs := s.cfg.LeaseObserver
	if !slices.Equal(ips, s.leaseIPs) {
		if obs != nil && s.leaseUntil.After(now) {
			for _, ip := range s.leaseIPs {
				if _, found := slices.BinarySearchFunc(ips, ip, netip.Addr.Compare); !found {
					obs.LeaseDropped(s.cfg.NodeID, ip, now)
				}
			}
		}
		s.leaseIPs = slices.Clone(ips)
	}
	s.leaseUntil = until
	if obs != nil {
		for _, ip := range ips {
			obs.LeaseHeld(s.cfg.NodeID, ip, now, until)
		}
	}
}

// dropLeases gives up every lease at once (shutdown).
func (s *Store) dropLeases() {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := time.Now()
	if obs := s.cfg.LeaseObserver; obs != nil && s.leaseUntil.After(now) {
		for _, ip := range s.leaseIPs {
			obs.LeaseDropped(s.cfg.NodeID, ip, now)
		}
	}
	s.leaseIPs, s.leaseUntil = nil, time.Time{}
}

// LeaseSet returns the IPs this host may announce at now (sorted; shared,
// do not modify) and the instant all their leases end; nil when it holds
// none. It allocates nothing, for callers that run on every renewal.
func (s *Store) LeaseSet(now time.Time) ([]netip.Addr, time.Time) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if !s.leaseUntil.After(now) {
		return nil, time.Time{}
	}
	return s.leaseIPs, s.leaseUntil
}

// Leases returns the IPs this host may announce at now, sorted by IP, each
// with the instant its lease ends. Announce an IP only while now < Until.
func (s *Store) Leases(now time.Time) []Lease {
	ips, until := s.LeaseSet(now)
	out := make([]Lease, len(ips))
	for i, ip := range ips {
		out[i] = Lease{IP: ip, Until: until}
	}
	return out
}
