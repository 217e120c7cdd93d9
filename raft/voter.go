package raft

import (
	"encoding/json"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Every voter of the raft group answers lease requests itself; the leader
// is not involved. A voter promises host H the IPs its applied state
// assigns to H, each only while it has no unexpired promise (plus
// clockDriftMargin) of that IP to anyone else, for LeaseDuration from the
// moment it answers. H holds an IP while a majority of the voters' current
// promises name it (lease_client.go). Any two majorities share a voter,
// and no voter promises one IP to two holders at once, so two hosts never
// hold one IP at once; docs/raft.md has the whole argument.

// voterState is what this host, as a voter, has promised. It lives for the
// process: a restarted voter promises nothing until fence, by when every
// promise of its previous process has run out.
type voterState struct {
	mu sync.Mutex
	// started is when this process began to listen; fence is when it may
	// first promise (started + lease + margin).
	started time.Time
	fence   time.Time
	hosts   map[string]*hostRecord
	// retired are promises still running that no host record shows: those
	// of a host's previous process, and IPs taken out of a host's promise
	// that the host may still count until the old end. They block every
	// holder, that host included, until they end plus the margin.
	retired []retiredPromise
}

// hostRecord is one host's state at this voter.
type hostRecord struct {
	mark reqMark // newest request handled (process, number, when)
	// ips (sorted; shared with responses, never modified) are promised
	// until exp, computed at log index applied.
	ips     []netip.Addr
	exp     time.Time
	applied uint64
	// complete: ips were every IP the state assigned to the host at
	// applied (none blocked), so renewing them alone is the whole answer.
	complete bool
	// leased is every IP the host held when it sent its latest request.
	leased          []netip.Addr
	draining, leave bool
	// lastIndex is the host's raft last log index in its latest request.
	lastIndex uint64
}

// retiredPromise is ips promised to one process (host, inc) until exp.
type retiredPromise struct {
	host string
	inc  uint64
	ips  []netip.Addr
	exp  time.Time
}

func newVoterState(start time.Time, l, margin time.Duration) *voterState {
	return &voterState{started: start, fence: start.Add(l + margin), hosts: map[string]*hostRecord{}}
}

// otherHolds reports whether a holder other than h may count a promise of
// ip from this voter. Callers hold vs.mu.
func (vs *voterState) otherHolds(ip netip.Addr, h string, now time.Time, margin time.Duration) bool {
	return !vs.freeAt(ip, h, now, margin).IsZero()
}

// freeAt is when ip becomes free to promise to h (the end plus the margin
// of the latest promise of it to another holder), zero if it is free at
// now. Callers hold vs.mu.
func (vs *voterState) freeAt(ip netip.Addr, h string, now time.Time, margin time.Duration) time.Time {
	var at time.Time
	for host, r := range vs.hosts {
		if e := r.exp.Add(margin); host != h && now.Before(e) && e.After(at) && containsIP(r.ips, ip) {
			at = e
		}
	}
	for _, rp := range vs.retired {
		if e := rp.exp.Add(margin); now.Before(e) && e.After(at) && containsIP(rp.ips, ip) {
			at = e
		}
	}
	return at
}

// pruneRetired forgets retired promises that ended. Callers hold vs.mu.
func (vs *voterState) pruneRetired(now time.Time, margin time.Duration) {
	vs.retired = slices.DeleteFunc(vs.retired, func(rp retiredPromise) bool {
		return !now.Before(rp.exp.Add(margin))
	})
}

// retire keeps ips promised to process (host, inc) until exp blocking
// everyone. Callers hold vs.mu.
func (vs *voterState) retire(host string, inc uint64, ips []netip.Addr, exp time.Time, now time.Time) {
	if len(ips) > 0 && exp.After(now) {
		vs.retired = append(vs.retired, retiredPromise{host: host, inc: inc, ips: ips, exp: exp})
	}
}

// releaseRetired frees what was retired from process (host, inc) and is
// not in held (sorted), the IPs that process counted from us when it sent
// a request handled now: it sends one request at a time, so it can only
// count what we answer from now on. Callers hold vs.mu.
func (vs *voterState) releaseRetired(host string, inc uint64, held []netip.Addr) {
	for i := range vs.retired {
		rp := &vs.retired[i]
		if rp.host != host || rp.inc != inc {
			continue
		}
		var keep []netip.Addr
		for _, ip := range rp.ips {
			if containsIP(held, ip) {
				keep = append(keep, ip)
			}
		}
		rp.ips = keep
	}
	vs.retired = slices.DeleteFunc(vs.retired, func(rp retiredPromise) bool { return len(rp.ips) == 0 })
}

func containsIP(sorted []netip.Addr, ip netip.Addr) bool {
	_, ok := slices.BinarySearchFunc(sorted, ip, netip.Addr.Compare)
	return ok
}

// sortedIPs returns ips sorted (a sorted copy if they are not).
func sortedIPs(ips []netip.Addr) []netip.Addr {
	if slices.IsSortedFunc(ips, netip.Addr.Compare) {
		return ips
	}
	ips = slices.Clone(ips)
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips
}

// votersTag names a voter set (sorted IDs): a host and a voter agree on
// the configuration when their tags match.
func votersTag(voters []string) uint64 {
	h := fnv.New64a()
	for _, v := range voters {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// promise answers one lease request at this voter.
func (s *Store) promise(req renewRequest) renewResponse {
	now := time.Now()
	if req.Incarnation == 0 {
		return renewResponse{Reason: "unnumbered request (an edged from before voter leases?)"}
	}
	vs := s.voter
	l, margin := s.cfg.LeaseDuration, s.cfg.ClockDriftMargin
	vs.mu.Lock()
	defer vs.mu.Unlock()
	r := vs.hosts[req.From]
	var last reqMark
	if r != nil {
		last = r.mark
	}
	if resp, ok := s.admitRenewal(vs, r, last, req, now); !ok {
		return resp
	}
	r = vs.hosts[req.From]
	woke := now.Sub(last.at) >= l || r.draining != req.Draining || req.Leave
	r.mark = reqMark{inc: req.Incarnation, seq: req.ReqSeq, at: now}
	r.draining, r.leave, r.lastIndex = req.Draining, req.Leave, req.LastIndex
	r.leased = sortedIPs(req.Leased)
	if req.LeasedIsHeld {
		r.leased = sortedIPs(req.Held)
	}
	if woke {
		// The leader loop sleeps while nothing is due: wake it when this
		// request may change what reconcile decides.
		defer s.kickReconcile()
	}
	vs.pruneRetired(now, margin)
	self, voters := s.latestVoters()
	if !slices.Contains(voters, self) {
		return renewResponse{Reason: "not a voter"}
	}
	if req.Voters != votersTag(voters) {
		return renewResponse{Reason: "configuration differs"}
	}
	held := sortedIPs(req.Held)
	vs.releaseRetired(req.From, req.Incarnation, held)
	s.fsm.mu.RLock()
	applied := s.fsm.applied
	s.fsm.mu.RUnlock()
	if r.complete && r.applied == applied && slices.Equal(held, r.ips) {
		// Steady: the host renews exactly what we promised, and the log has
		// not moved since we computed it, so no IP of it changed owner and
		// nobody else can have been promised one since.
		r.exp = now.Add(l)
		return renewResponse{OK: true, IPs: r.ips, Voters: req.Voters, Applied: applied}
	}
	// What the host still counts from us and we no longer promise keeps
	// blocking others until its old end; what it does not count is free.
	var out []netip.Addr
	complete := false
	var retry time.Time // when the first blocked IP becomes free
	if now.Before(vs.fence) {
		retry = vs.fence
	} else {
		s.fsm.mu.RLock()
		applied = s.fsm.applied
		owned := s.fsm.byOwner[req.From]
		for ip := range owned {
			at := vs.freeAt(ip, req.From, now, margin)
			if at.IsZero() {
				out = append(out, ip)
			} else if retry.IsZero() || at.Before(retry) {
				retry = at
			}
		}
		complete = len(out) == len(owned)
		s.fsm.mu.RUnlock()
		slices.SortFunc(out, netip.Addr.Compare)
	}
	var dropped []netip.Addr
	for _, ip := range r.ips {
		if containsIP(held, ip) && !containsIP(out, ip) {
			dropped = append(dropped, ip)
		}
	}
	vs.retire(req.From, req.Incarnation, dropped, r.exp, now)
	r.ips, r.exp, r.applied, r.complete = out, now.Add(l), applied, complete
	resp := renewResponse{OK: true, IPs: out, Voters: req.Voters, Applied: applied}
	if !retry.IsZero() {
		resp.RetryIn = retry.Sub(now)
	}
	return resp
}

// latestVoters returns this host's ID and the voters of the latest raft
// configuration it knows (sorted).
func (s *Store) latestVoters() (string, []string) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return s.cfg.NodeID, nil
	}
	var out []string
	for _, sv := range f.Configuration().Servers {
		if sv.Suffrage == hraft.Voter {
			out = append(out, string(sv.ID))
		}
	}
	slices.Sort(out)
	return s.cfg.NodeID, out
}

// hostView is what this voter knows of one host, for the leader loop:
// heard is its latest request, or when this voter started if later.
type hostView struct {
	heard           time.Time
	exp             time.Time
	draining, leave bool
	leased          []netip.Addr
	lastIndex       uint64
}

// view returns this voter's record of host h (zero if none).
func (vs *voterState) view(h string) hostView {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	r := vs.hosts[h]
	if r == nil {
		return hostView{heard: vs.started}
	}
	heard := r.mark.at
	if heard.Before(vs.started) {
		heard = vs.started
	}
	return hostView{heard: heard, exp: r.exp, draining: r.draining, leave: r.leave, leased: r.leased, lastIndex: r.lastIndex}
}

// serveLease answers lease requests on one connection until it fails.
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
			resp = s.promise(req)
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.LeaseDuration))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}
