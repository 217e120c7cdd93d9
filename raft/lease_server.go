package raft

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// leaderState is what a leader knows only in memory during its term: when
// each host last renewed, which leases it granted until when, and when
// leases granted by earlier leaders have certainly run out.
type leaderState struct {
	term  uint64
	start time.Time
	// fenceUntil is start + L/2 + L + 2*margin: a deposed leader stops
	// granting at most quorumWindow (L/2) after its last quorum contact,
	// which was before our election, and its grants last L more; IPs not
	// settled in the log wait until then.
	fenceUntil time.Time

	mu      sync.Mutex
	contact map[string]time.Time
	byHost  map[string]map[netip.Addr]time.Time // host -> ip -> grant expiry
	// steady holds, per host, its last full grant when that grant was all
	// the host held: renewing exactly that set while the log stays put
	// moves one expiry instead of every IP's (see renewSteady).
	steady map[string]steadyGrant
	// latest is, per host, the expiry of its latest non-empty grant: the
	// end of everything it may hold (entries pruned since only lower it).
	latest   map[string]time.Time
	drainReq map[string]bool
	leaveReq map[string]bool
	lastSent map[string]sentResp
	voters   []string
	servers  map[string]string
	// seen is, per host name, the newest request handled (see admitRequest);
	// handoverUntil is when everything granted to a host name before its
	// current process took over has run out: until then (plus the margin)
	// the new process is granted nothing and its Held prunes nothing.
	seen          map[string]reqMark
	handoverUntil map[string]time.Time
}

func newLeaderState(term uint64, start time.Time, l, margin time.Duration) *leaderState {
	return &leaderState{term: term, start: start, fenceUntil: start.Add(quorumWindow(l) + l + 2*margin),
		contact: map[string]time.Time{}, byHost: map[string]map[netip.Addr]time.Time{},
		drainReq: map[string]bool{}, leaveReq: map[string]bool{}, servers: map[string]string{},
		lastSent: map[string]sentResp{}, steady: map[string]steadyGrant{}, latest: map[string]time.Time{},
		seen: map[string]reqMark{}, handoverUntil: map[string]time.Time{}}
}

// steadyGrant is a host's whole grant: ips (sorted; shared with responses,
// never modified), computed at log index applied, all held until exp. exp
// may be later than the byHost entries of the same IPs.
type steadyGrant struct {
	applied uint64
	ips     []netip.Addr
	exp     time.Time
}

// flatten writes h's steady expiry into byHost and forgets it, so the
// per-IP table is complete again. Callers hold ls.mu.
func (ls *leaderState) flatten(h string) {
	sg, ok := ls.steady[h]
	if !ok {
		return
	}
	delete(ls.steady, h)
	m := ls.byHost[h]
	for _, ip := range sg.ips {
		if exp, had := m[ip]; had && sg.exp.After(exp) {
			m[ip] = sg.exp
		}
	}
}

// sentResp remembers the last response sent to a host and when.
type sentResp struct {
	seq uint64
	at  time.Time
}

// quorumWindow is how recent a majority's renewals must be for the leader
// to grant: half a lease. Renewals come every quarter lease, so a healthy
// quorum is at most about a quarter lease old; a shorter window shortens
// the new leader's fence by the same amount.
func quorumWindow(l time.Duration) time.Duration { return l / 2 }

// quorumOK reports whether a majority of voters renewed within w (the
// leader counts itself). Callers hold ls.mu.
func (ls *leaderState) quorumOK(self string, now time.Time, w time.Duration) bool {
	if len(ls.voters) == 0 {
		return false
	}
	n := 0
	for _, v := range ls.voters {
		if v == self || now.Sub(ls.contact[v]) < w {
			n++
		}
	}
	return n > len(ls.voters)/2
}

// otherHolds reports whether a host other than h may still hold a lease for
// ip granted in this term. Callers hold ls.mu.
func (ls *leaderState) otherHolds(ip netip.Addr, h string, now time.Time, margin time.Duration) bool {
	for host, m := range ls.byHost {
		if host == h {
			continue
		}
		if sg, ok := ls.steady[host]; ok && now.Before(sg.exp.Add(margin)) {
			if _, found := slices.BinarySearchFunc(sg.ips, ip, netip.Addr.Compare); found {
				return true
			}
		}
		if exp, ok := m[ip]; ok {
			if now.Before(exp.Add(margin)) {
				return true
			}
			delete(m, ip)
		}
	}
	return false
}

// maxExpiry is the latest grant expiry to host h, without walking its IPs
// (reconcile asks for it on every tick). It may exceed the true latest
// expiry of what h still holds by what h gave up since its last non-empty
// grant, which only delays declaring a host silent that holds nothing.
// Callers hold ls.mu.
func (ls *leaderState) maxExpiry(h string) time.Time {
	return ls.latest[h]
}

// grant answers one renewal on the leader.
func (s *Store) grant(req renewRequest) renewResponse {
	now := time.Now()
	ls := s.ldr.Load()
	if ls == nil || s.raft.State() != hraft.Leader {
		return renewResponse{Reason: "not leader"}
	}
	if req.Term != ls.term {
		return renewResponse{Reason: "term mismatch"}
	}
	l, margin := s.cfg.LeaseDuration, s.cfg.ClockDriftMargin
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if resp, ok := s.admitRenewal(ls, req, now); !ok {
		return resp
	}
	// The leader loop sleeps while nothing is due: wake it when this
	// renewal may change what reconcile decides (a host heard again after
	// a lease's silence, draining or leaving).
	if prev, ok := ls.contact[req.From]; !ok || now.Sub(prev) >= l || ls.drainReq[req.From] != req.Draining || req.Leave {
		defer s.kickReconcile()
	}
	// current: the sender had seen every grant this leader sent it (its ack
	// is our latest response, or we sent it none). Only then does its Held
	// say what it holds and its Draining what it wants now; an older
	// request (sent before a grant it has since received, e.g. left on a
	// connection that timed out and handled late) must not make the leader
	// forget a live grant, or another host gets the same IP.
	// For numbered senders admitRenewal already refused such requests (a
	// process sends one request at a time, so every response to a request
	// handled earlier was installed or abandoned before this one was sent);
	// the ack check stays for unnumbered senders, and errs on the safe side
	// (a request on a new connection after a lost response is not current).
	// While a new process of the host takes over (handover), what it holds
	// says nothing about what the previous process may still hold.
	self := req.From == s.cfg.NodeID
	last, sent := ls.lastSent[req.From]
	acked := sent && req.Ack == last.seq
	handover := now.Before(ls.handoverUntil[req.From].Add(margin))
	current := (self || !sent || acked) && !handover
	switch {
	case self:
		ls.contact[req.From] = now
	case acked:
		ls.contact[req.From] = last.at
	}
	// Sequence numbers are unique per process, across terms, so an ack
	// can never match a response of another term by accident.
	seq := s.respSeq.Add(1)
	ls.lastSent[req.From] = sentResp{seq: seq, at: now}
	if current {
		ls.drainReq[req.From] = req.Draining
	}
	if req.Leave {
		ls.leaveReq[req.From] = true
	}
	_, member := ls.servers[req.From]
	if handover {
		return s.grantNothing(ls, now, member, seq)
	}
	if resp, ok := s.renewSteady(ls, req, now, member, seq); ok {
		return resp
	}
	ls.flatten(req.From)
	granted := ls.byHost[req.From]
	if granted == nil {
		granted = map[netip.Addr]time.Time{}
		ls.byHost[req.From] = granted
	}
	// A current host reports what it holds as of sending: anything else it
	// held is gone, whichever leader granted it.
	if current {
		pruneGranted(granted, req.Held)
	}
	if !ls.quorumOK(s.cfg.NodeID, now, quorumWindow(l)) {
		return renewResponse{Reason: "no quorum contact", Member: member, Seq: seq}
	}
	fenced := now.Before(ls.fenceUntil)
	var out []netip.Addr
	s.fsm.mu.RLock()
	applied := s.fsm.applied
	for ip := range s.fsm.byOwner[req.From] {
		a := s.fsm.assign[ip]
		if (!a.Settled && fenced) || ls.otherHolds(ip, req.From, now, margin) {
			continue
		}
		out = append(out, ip)
	}
	s.fsm.mu.RUnlock()
	exp := now.Add(l)
	for _, ip := range out {
		granted[ip] = exp
	}
	slices.SortFunc(out, netip.Addr.Compare)
	if len(out) > 0 {
		ls.latest[req.From] = exp
	}
	if !fenced && len(granted) == len(out) {
		ls.steady[req.From] = steadyGrant{applied: applied, ips: out, exp: exp}
	}
	return renewResponse{OK: true, IPs: out, Member: member, Seq: seq}
}

// grantNothing answers a host whose previous process may still hold
// leases: OK (it is heard and counts toward quorum) with no IPs. Callers
// hold ls.mu.
func (s *Store) grantNothing(ls *leaderState, now time.Time, member bool, seq uint64) renewResponse {
	if !ls.quorumOK(s.cfg.NodeID, now, quorumWindow(s.cfg.LeaseDuration)) {
		return renewResponse{Reason: "no quorum contact", Member: member, Seq: seq}
	}
	return renewResponse{OK: true, Member: member, Seq: seq}
}

// pruneGranted drops from granted the IPs not in held (sorted by the
// sender, heldIPs; a copy is sorted if not).
func pruneGranted(granted map[netip.Addr]time.Time, held []netip.Addr) {
	if !slices.IsSortedFunc(held, netip.Addr.Compare) {
		held = slices.Clone(held)
		slices.SortFunc(held, netip.Addr.Compare)
	}
	for ip := range granted {
		if _, ok := slices.BinarySearchFunc(held, ip, netip.Addr.Compare); !ok {
			delete(granted, ip)
		}
	}
}

// renewSteady renews a host's whole last grant in O(1) map work when
// nothing it depends on can have changed: the host holds exactly that grant
// (and nothing else), the log has not moved since it was computed (no IP
// changed owner, pool or settled state, so no other host was granted any
// of them since), the term is past its fence, and the leader still has
// quorum contact. Otherwise it reports false and grant does the full work.
// Callers hold ls.mu.
func (s *Store) renewSteady(ls *leaderState, req renewRequest, now time.Time, member bool, seq uint64) (renewResponse, bool) {
	sg, ok := ls.steady[req.From]
	if !ok || now.Before(ls.fenceUntil) || !slices.Equal(req.Held, sg.ips) {
		return renewResponse{}, false
	}
	s.fsm.mu.RLock()
	applied := s.fsm.applied
	s.fsm.mu.RUnlock()
	if applied != sg.applied {
		return renewResponse{}, false
	}
	l := s.cfg.LeaseDuration
	if !ls.quorumOK(s.cfg.NodeID, now, quorumWindow(l)) {
		return renewResponse{Reason: "no quorum contact", Member: member, Seq: seq}, true
	}
	sg.exp = now.Add(l)
	ls.steady[req.From] = sg
	if len(sg.ips) > 0 {
		ls.latest[req.From] = sg.exp
	}
	return renewResponse{OK: true, IPs: sg.ips, Member: member, Seq: seq}, true
}

// serveLease answers renewals on one connection until it fails.
func (s *Store) serveLease(c net.Conn) {
	// Peers are authenticated by mutual TLS, so requests are trusted in size.
	// With TLS, a request may only speak for a host the peer's certificate
	// names (identity.go); a connection without TLS state then vouches for
	// no one.
	id, _ := connIdentity(c)
	checkID := s.stream != nil && s.stream.server != nil
	dec := json.NewDecoder(c)
	enc := json.NewEncoder(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * s.cfg.LeaseDuration))
		var req renewRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		var resp renewResponse
		if checkID && !id.vouchesFor(req.From) {
			resp = s.refuseIdentity(id, req, c.RemoteAddr())
		} else {
			resp = s.grant(req)
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.LeaseDuration))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func contextWithDeadline(d time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), d)
}
