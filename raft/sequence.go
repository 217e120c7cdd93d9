package raft

import (
	"time"
)

// Every renewal carries its sender's process (Incarnation: fixed when the
// Store opens) and a request number (ReqSeq: one more for every request the
// process sends, over any connection, to any leader). A leader keeps, per
// host name and for its term, the newest (Incarnation, ReqSeq) it handled,
// compared in that order, and handles only newer requests:
//
//   - same process, not newer: a request overtaken by a later one (left on a
//     connection that timed out, handled late). It is refused ("stale
//     request") and changes nothing, so it can neither shorten what the
//     leader records as granted nor undo a drain the host asked for since.
//   - newer process: the host restarted, or a second process runs under the
//     same name. It wins, for the rest of the term, over every older one;
//     older ones are refused ("stale request", and a rate-limited warning
//     "duplicate node name?"), so their leases run out and two processes of
//     one name never both hold a grant of this leader. The newer process
//     is granted nothing until everything the leader granted the name before
//     has run out plus clockDriftMargin (handoverUntil).
//   - older process after the newest was silent for leaseDuration +
//     clockDriftMargin: accepted as a new process. Whatever the silent one
//     held has run out by then, and this is what keeps a host whose clock
//     was stepped back across a restart (so its Incarnation is lower) from
//     being locked out for the whole term.
//
// The record lives in memory for one term: a new leader learns each host's
// process again from its first request. A second process of a name started
// just before an election can therefore overlap grants of the old leader
// with those of the new one for at most one lease; the warning is what tells
// the operator to fix the names.
//
// Incarnation 0 is a sender from before sequence numbers: such requests are
// ordered below every numbered process and not against each other (the ack
// check in grant still guards them).

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

// admitRenewal applies admitRequest to req and records it when admitted. Refused
// requests change nothing and get their answer; a new process of a host
// starts its handover. Callers hold ls.mu.
func (s *Store) admitRenewal(ls *leaderState, req renewRequest, now time.Time) (renewResponse, bool) {
	last, known := ls.seen[req.From]
	silence := s.cfg.LeaseDuration + s.cfg.ClockDriftMargin
	log := s.cfg.Logger
	switch admitRequest(last, known, req.Incarnation, req.ReqSeq, now, silence) {
	case refuseStale:
		log.Debug("lease renewal refused: stale request", "host", req.From, "seq", req.ReqSeq, "handled", last.seq)
		return renewResponse{Reason: "stale request"}, false
	case refuseOlderProcess:
		if s.logLim.allow("older\x00"+req.From, now) {
			log.Warn("lease renewal refused: duplicate node name? requests from an older process of "+req.From,
				"host", req.From, "incarnation", req.Incarnation, "newest", last.inc)
		}
		return renewResponse{Reason: "stale request: a newer process of " + req.From + " is renewing"}, false
	case admitNewProcess:
		// Everything granted to the name so far may be held by the other
		// process until it ends; flatten so the per-IP table says so.
		ls.flatten(req.From)
		if exp := ls.latest[req.From]; exp.After(ls.handoverUntil[req.From]) {
			ls.handoverUntil[req.From] = exp
		}
		if s.logLim.allow("process\x00"+req.From, now) {
			log.Info("lease renewals from a new process of a host", "host", req.From,
				"incarnation", req.Incarnation, "previous", last.inc)
		}
	}
	ls.seen[req.From] = reqMark{inc: req.Incarnation, seq: req.ReqSeq, at: now}
	return renewResponse{}, true
}
