package raft

import (
	"time"
)

// Every lease request carries its sender's process (Incarnation: fixed when
// the Store opens) and a request number (ReqSeq: one more for every request
// the process sends, over any connection, to any voter; a process sends one
// request at a time to each voter). Each voter keeps, per host name and for
// the life of its process, the newest (Incarnation, ReqSeq) it handled,
// compared in that order, and handles only newer requests:
//
//   - same process, not newer: a request overtaken by a later one (left on a
//     connection that timed out, handled late). It is refused ("stale
//     request") and changes nothing, so it can neither release what the
//     voter promised nor undo a drain the host asked for since.
//   - newer process: the host restarted, or a second process runs under the
//     same name. It wins over every older one; older ones are refused
//     ("stale request", and a rate-limited warning "duplicate node name?"),
//     so their leases run out. What the voter promised the older process is
//     retired: it blocks the newer one (and everyone) until it has run out
//     plus clockDriftMargin, so two processes of one name never hold one IP
//     at once.
//   - older process after the newest was silent for leaseDuration +
//     clockDriftMargin: accepted as a new process. Whatever the silent one
//     held has run out by then, and this is what keeps a host whose clock
//     was stepped back across a restart (so its Incarnation is lower) from
//     being locked out for the whole term.
//
// The record lives in the voter's memory; a restarted voter promises
// nothing for a lease (voterState.fence), so forgetting it is safe. The
// warning is what tells the operator to fix the names.
//
// Incarnation 0 is a sender from before voter leases: it is refused.

// reqMark is the newest request a leader handled from one host name.
type reqMark struct {
	inc, seq uint64
	at       time.Time // when the leader handled it
}

// admission is what a leader does with a renewal, given its sender's last
// handled request.
type admission int

const (
	// admitNext is the next request of the process the leader knows, or the
	// first it hears from the name.
	admitNext admission = iota
	// admitNewProcess is a process other than the one the leader knew
	// (restarted, or the known one went silent).
	admitNewProcess
	// refuseStale is a request of the known process that is not newer than
	// one already handled.
	refuseStale
	// refuseOlderProcess comes from a process older than the known one,
	// which is still renewing: a duplicate node name, or a late request of
	// a process that has since restarted.
	refuseOlderProcess
)

// admitRequest decides what to do with a request from process inc numbered seq,
// received at now, when the newest handled request of its host is last
// (known false: none). silence is how long the known process must have been
// quiet before an older one may take over: leaseDuration + clockDriftMargin.
func admitRequest(last reqMark, known bool, inc, seq uint64, now time.Time, silence time.Duration) admission {
	switch {
	case !known:
		return admitNext
	case inc == last.inc:
		if inc == 0 || seq > last.seq {
			return admitNext
		}
		return refuseStale
	case inc > last.inc:
		return admitNewProcess
	case now.Sub(last.at) >= silence:
		return admitNewProcess
	default:
		return refuseOlderProcess
	}
}

// newIncarnation numbers a new process of this host: the wall clock in
// nanoseconds, so a restart numbers higher unless the clock was stepped
// back (see admitRequest), and never 0 (which marks unnumbered senders).
func newIncarnation() uint64 {
	if n := time.Now().UnixNano(); n > 0 {
		return uint64(n)
	}
	return 1
}

// admitRenewal applies admitRequest to req at this voter, given its
// sender's record r (nil: none) and newest handled request last. Refused
// requests change nothing and get their answer; a new process of a host
// retires what the previous one was promised (it may hold it until it
// ends) and starts with an empty record. On success vs.hosts[req.From]
// exists. Callers hold vs.mu.
func (s *Store) admitRenewal(vs *voterState, r *hostRecord, last reqMark, req renewRequest, now time.Time) (renewResponse, bool) {
	silence := s.cfg.LeaseDuration + s.cfg.ClockDriftMargin
	log := s.cfg.Logger
	switch admitRequest(last, r != nil, req.Incarnation, req.ReqSeq, now, silence) {
	case refuseStale:
		log.Debug("lease request refused: stale request", "host", req.From, "seq", req.ReqSeq, "handled", last.seq)
		return renewResponse{Reason: "stale request"}, false
	case refuseOlderProcess:
		if s.logLim.allow("older\x00"+req.From, now) {
			log.Warn("lease request refused: duplicate node name? requests from an older process of "+req.From,
				"host", req.From, "incarnation", req.Incarnation, "newest", last.inc)
		}
		return renewResponse{Reason: "stale request: a newer process of " + req.From + " is renewing"}, false
	case admitNewProcess:
		vs.retire(req.From, r.mark.inc, r.ips, r.exp, now)
		vs.hosts[req.From] = &hostRecord{}
		if s.logLim.allow("process\x00"+req.From, now) {
			log.Info("lease requests from a new process of a host", "host", req.From,
				"incarnation", req.Incarnation, "previous", last.inc)
		}
	case admitNext:
		if r == nil {
			vs.hosts[req.From] = &hostRecord{}
		}
	}
	return renewResponse{}, true
}
