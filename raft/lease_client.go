package raft

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// renewRequest is what a host sends a voter to renew its leases.
type renewRequest struct {
	From string `json:"from"`
	// Voters tags the voter set of the sender's latest configuration
	// (votersTag); a voter whose own differs promises nothing, so every
	// majority a host counts is a majority of one configuration.
	Voters uint64 `json:"voters"`
	// Held is what the sender counts from this voter's latest promise when
	// it sends this (empty once that promise ran out): the voter may
	// release the rest at once.
	Held []netip.Addr `json:"held"`
	// Leased is every IP the sender holds a lease for (omitted, with
	// LeasedIsHeld, when it equals Held); the leader settles moved IPs
	// from it.
	Leased       []netip.Addr `json:"leased,omitempty"`
	LeasedIsHeld bool         `json:"leasedIsHeld,omitempty"`
	Draining     bool         `json:"draining"`
	Leave        bool         `json:"leave"`
	// Incarnation numbers the sending process (fixed from Open) and ReqSeq
	// this request among all it sent (over any connection, to any voter);
	// a voter handles only requests newer than the last it handled from
	// From (see admitRequest).
	Incarnation uint64 `json:"incarnation"`
	ReqSeq      uint64 `json:"reqSeq"`
	// LastIndex is the sender's last raft log index when it sent this. It
	// orders prompt elections only (election.go): nothing about leases
	// depends on it.
	LastIndex uint64 `json:"lastIndex,omitempty"`
}

// renewResponse is a voter's promise: OK with the IPs it promises the
// sender for LeaseDuration from now, or OK=false, which promises nothing.
type renewResponse struct {
	OK     bool         `json:"ok"`
	Reason string       `json:"reason,omitempty"`
	IPs    []netip.Addr `json:"ips"`
	// Voters echoes the request's tag.
	Voters uint64 `json:"voters"`
	// Applied is the voter's applied log index: a host that applied more
	// asks again soon, as the voter may not yet know what it owns.
	Applied uint64 `json:"applied,omitempty"`
	// RetryIn, if set, is when an IP the voter's state assigns to the
	// host but is still promised to another holder becomes free: the host
	// asks again then. A duration, not a time: no clock crosses the wire.
	RetryIn time.Duration `json:"retryIn,omitempty"`
}

// renewRetry is how soon a refused or failed request is retried: every
// millisecond here is announcement time when a promise is running out.
const renewRetry = 10 * time.Millisecond

// maxQuickRetries bounds the quick retries of one voter in a row.
const maxQuickRetries = 3

// promiseFrom is a voter's latest promise as this host counts it: ips
// until end (this host's clock: the request's send time plus the lease).
type promiseFrom struct {
	tag  uint64
	ips  []netip.Addr
	end  time.Time
	sent time.Time
}

// voterConn is this host's lease connection to one voter. One request at
// a time is in flight on it (busy).
type voterConn struct {
	id   string
	mu   sync.Mutex
	busy bool // guarded by leaseClient.mu, as are retry and fails
	// retry asks for the next request soon (renewRetry), not at the next
	// tick: the last one failed, was refused, or found the voter behind
	// this host's log. fails counts failures in a row; past maxQuickRetries
	// the voter waits for the regular tick, so a dead voter costs a few
	// dials, not a hundred a second.
	retry bool
	fails int
	addr  string
	conn  net.Conn
	enc   *json.Encoder
	dec   *json.Decoder
}

// leaseClient is this host's side of the voter leases: connections and
// the latest promise per voter.
type leaseClient struct {
	mu       sync.Mutex
	conns    map[string]*voterConn
	promises map[string]promiseFrom
	voters   []string // the latest configuration's voters, sorted
	tag      uint64
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
			s.lc.closeAll()
			return
		case <-t.C:
		case <-s.renewNow:
		case <-retry.C:
			s.renewRound(nil, true)
			continue
		case <-s.renewFailed:
			retry.Reset(renewRetry)
			continue
		}
		s.renewRound(nil, false)
	}
}

// renewRound sends a request to every voter of the latest configuration
// that has none in flight. Each answer is installed as it arrives; done, if
// not nil, is called once per request sent, when it finished, with
// whether the voter answered OK. It returns how many requests it sent.
// With retries, only voters asked to retry soon are sent one.
func (s *Store) renewRound(done func(ok bool), retries bool) int {
	self, voters := s.latestVoters()
	tag := votersTag(voters)
	s.lc.mu.Lock()
	if tag != s.lc.tag || !slices.Equal(voters, s.lc.voters) {
		s.lc.tag, s.lc.voters = tag, voters
		for id, vc := range s.lc.conns {
			if !slices.Contains(voters, id) {
				vc.mu.Lock()
				vc.close()
				vc.mu.Unlock()
				delete(s.lc.conns, id)
			}
		}
		s.recomputeLocked() // promises of another configuration no longer count
	}
	var todo []*voterConn
	for _, id := range voters {
		vc := s.lc.conns[id]
		if vc == nil {
			vc = &voterConn{id: id}
			s.lc.conns[id] = vc
		}
		if retries && (!vc.retry || vc.fails > maxQuickRetries) {
			continue
		}
		if !vc.busy {
			vc.busy, vc.retry = true, false
			todo = append(todo, vc)
		}
	}
	s.lc.mu.Unlock()
	for _, vc := range todo {
		go func() {
			ok := s.renewWith(vc, self, tag)
			if done != nil {
				done(ok)
			}
		}()
	}
	return len(todo)
}

// renewWith sends one request to voter vc and installs the answer; it
// reports whether the voter answered OK.
func (s *Store) renewWith(vc *voterConn, self string, tag uint64) bool {
	retry := false
	ok := false
	defer func() {
		s.lc.mu.Lock()
		vc.busy = false
		if ok && !retry {
			vc.fails = 0
		} else {
			vc.fails++
		}
		vc.retry = vc.retry || retry || !ok
		s.lc.mu.Unlock()
		if vc.retry {
			s.kickFailed()
		}
	}()
	select {
	case <-s.stop:
		return false
	default:
	}
	t0 := time.Now()
	held, leased := s.heldFrom(vc.id, t0)
	req := renewRequest{From: self, Voters: tag, Held: held, Draining: s.wantsDrain(), Leave: s.leaving.Load(),
		Incarnation: s.incarnation, ReqSeq: s.reqSeq.Add(1), LastIndex: s.raft.LastIndex()}
	if slices.Equal(held, leased) {
		req.LeasedIsHeld = true
	} else {
		req.Leased = leased
	}
	var resp renewResponse
	if vc.id == self {
		resp = s.promise(req)
	} else {
		addr, err := s.voterAddr(vc.id)
		if err == nil {
			resp, err = vc.call(s, addr, req, t0.Add(s.cfg.LeaseDuration))
		}
		if err != nil {
			s.cfg.Logger.Debug("lease request failed", "voter", vc.id, "err", err)
			s.met.renewal(false)
			return false
		}
	}
	s.met.renewal(resp.OK)
	if !resp.OK {
		s.cfg.Logger.Debug("lease request refused", "voter", vc.id, "reason", resp.Reason)
		return false
	}
	ok = true
	ips := sortedIPs(resp.IPs)
	s.installPromise(vc.id, promiseFrom{tag: resp.Voters, ips: ips, end: t0.Add(s.cfg.LeaseDuration), sent: t0})
	switch {
	case withdrew(held, ips):
		// Tell the voter soon that we no longer count what it withdrew:
		// it keeps blocking the new owner until then.
		retry = true
	case resp.RetryIn > 0:
		time.AfterFunc(min(resp.RetryIn, s.cfg.LeaseDuration), s.kickRenewOnly)
	case resp.Applied < s.appliedIndex():
		retry = true
	}
	return true
}

// withdrew reports whether an answer (ips, sorted) left out an IP of the
// previous promise counted (held, sorted).
func withdrew(held, ips []netip.Addr) bool {
	for _, ip := range held {
		if !containsIP(ips, ip) {
			return true
		}
	}
	return false
}

// appliedIndex is the last log index applied here.
func (s *Store) appliedIndex() uint64 {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.applied
}

func (s *Store) kickFailed() {
	select {
	case s.renewFailed <- struct{}{}:
	default:
	}
}

// voterAddr is the raft address of voter id in the latest configuration.
func (s *Store) voterAddr(id string) (string, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", err
	}
	for _, sv := range f.Configuration().Servers {
		if string(sv.ID) == id {
			return string(sv.Address), nil
		}
	}
	return "", fmt.Errorf("voter %s not in the configuration", id)
}

// heldFrom returns what this host counts from voter id's latest promise at
// now, and every IP it holds a lease for.
func (s *Store) heldFrom(id string, now time.Time) (held, leased []netip.Addr) {
	s.lc.mu.Lock()
	if p, ok := s.lc.promises[id]; ok && p.end.After(now) && p.tag == s.lc.tag {
		held = p.ips
	}
	s.lc.mu.Unlock()
	return held, s.heldIPs(now)
}

func (c *voterConn) call(s *Store, addr string, req renewRequest, deadline time.Time) (renewResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
		c.conn, c.addr = conn, addr
		c.enc, c.dec = json.NewEncoder(conn), json.NewDecoder(conn)
	}
	_ = c.conn.SetDeadline(deadline)
	if err := c.enc.Encode(req); err != nil {
		c.close()
		return resp, err
	}
	if err := c.dec.Decode(&resp); err != nil {
		c.close()
		return resp, err
	}
	return resp, nil
}

func (c *voterConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (lc *leaseClient) closeAll() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, vc := range lc.conns {
		vc.mu.Lock()
		vc.close()
		vc.mu.Unlock()
	}
}

// installPromise records voter id's answer and recomputes the leases.
func (s *Store) installPromise(id string, p promiseFrom) {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	if old, ok := s.lc.promises[id]; ok && old.sent.After(p.sent) {
		return
	}
	s.lc.promises[id] = p
	s.recomputeLocked()
}

// leaseOf computes what promises (counted from voters, a majority of
// which is needed) let this host hold at now: the lease end is the q-th
// latest promise end (q the majority), and the IPs are those named by q
// promises that end no earlier. Every IP returned is thus named by a
// majority of promises running until at least the end returned.
func leaseOf(promises map[string]promiseFrom, voters []string, tag uint64, now time.Time) ([]netip.Addr, time.Time) {
	q := len(voters)/2 + 1
	if len(voters) == 0 {
		return nil, time.Time{}
	}
	var cur []promiseFrom
	for _, v := range voters {
		if p, ok := promises[v]; ok && p.tag == tag && p.end.After(now) {
			cur = append(cur, p)
		}
	}
	if len(cur) < q {
		return nil, time.Time{}
	}
	sort.Slice(cur, func(i, j int) bool { return cur[i].end.After(cur[j].end) })
	end := cur[q-1].end
	top := cur[:q]
	for i := q; i < len(cur) && !cur[i].end.Before(end); i++ {
		top = cur[:i+1]
	}
	same := true
	for _, p := range top[1:] {
		if !slices.Equal(p.ips, top[0].ips) {
			same = false
			break
		}
	}
	if same {
		return top[0].ips, end
	}
	count := map[netip.Addr]int{}
	for _, p := range top {
		for _, ip := range p.ips {
			count[ip]++
		}
	}
	var out []netip.Addr
	for ip, n := range count {
		if n >= q {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, end
}

// recompute installs the leases the current promises give.
func (s *Store) recompute() {
	s.lc.mu.Lock()
	defer s.lc.mu.Unlock()
	s.recomputeLocked()
}

// recomputeLocked is recompute with s.lc.mu held: computing and installing
// under one lock keeps an older computation from replacing a newer one.
func (s *Store) recomputeLocked() {
	ips, until := leaseOf(s.lc.promises, s.lc.voters, s.lc.tag, time.Now())
	if s.installLeases(ips, until) {
		s.subs.Notify()
	}
}

// renewOnce sends a request to every voter that has none in flight and
// waits for the answers (at most a lease). It reports whether a majority
// of the voters answered OK.
func (s *Store) renewOnce() bool {
	ch := make(chan bool)
	n := s.renewRound(func(ok bool) { ch <- ok }, false)
	good := 0
	for range n {
		if <-ch {
			good++
		}
	}
	s.lc.mu.Lock()
	voters := len(s.lc.voters)
	s.lc.mu.Unlock()
	return good > voters/2
}

// heldIPs lists the IPs this host holds a lease for at now, sorted; the
// slice is shared and must not be modified.
func (s *Store) heldIPs(now time.Time) []netip.Addr {
	ips, _ := s.LeaseSet(now)
	return ips
}

// installLeases replaces the lease table: ips (sorted) are held until
// until; IPs not in it are dropped at once. It reports whether anything
// changed.
func (s *Store) installLeases(ips []netip.Addr, until time.Time) bool {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := time.Now()
	if !until.After(now) || s.handedOff.Load() {
		ips, until = nil, time.Time{}
	}
	obs := s.cfg.LeaseObserver
	held := s.leaseUntil.After(now)
	if !slices.Equal(ips, s.leaseIPs) || (held && until.Before(s.leaseUntil)) {
		if obs != nil && held {
			for _, ip := range s.leaseIPs {
				// A shorter end counts as dropped now and held again.
				if !containsIP(ips, ip) || until.Before(s.leaseUntil) {
					obs.LeaseDropped(s.cfg.NodeID, ip, now)
				}
			}
		}
		if !slices.Equal(ips, s.leaseIPs) {
			s.leaseIPs = slices.Clone(ips)
		}
	} else if until.Equal(s.leaseUntil) {
		return false
	}
	s.leaseUntil = until
	if obs != nil && until.After(now) {
		for _, ip := range ips {
			obs.LeaseHeld(s.cfg.NodeID, ip, now, until)
		}
	}
	return true
}

// dropLeases gives up every lease at once (shutdown) and counts no promise
// from then on.
func (s *Store) dropLeases() {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	s.handedOff.Store(true)
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

func contextWithDeadline(d time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), d)
}
