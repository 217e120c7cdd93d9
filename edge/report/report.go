// Package report raises the problems found in Kubernetes objects (one bad
// object among many) as logs and Events without flooding either: the HAProxy
// part and the nftables part rebuild their whole desired state on every
// change, and would otherwise repeat every problem on every rebuild.
package report

import "log/slog"

// Problem is one object's trouble.
type Problem struct {
	Kind, Key, Reason string
	Err               error
}

// Sink raises one Warning Event on an object (nil: none).
type Sink func(kind, key, reason, message string)

// Deduper remembers what it reported. Report logs and raises an Event for
// each (kind, key, reason) whose message changed since the previous
// Report: one that persists is not repeated, one that goes away and comes
// back is. Problems of one (kind, key, reason) are joined into one message.
// It is not safe for concurrent use (each part reports from its one loop).
type Deduper struct {
	log      *slog.Logger
	msg      string
	sink     Sink
	reported map[string]string // kind/key/reason -> message
}

// New returns a Deduper that logs msg at Warn and raises Events on sink.
func New(log *slog.Logger, msg string, sink Sink) *Deduper {
	return &Deduper{log: log, msg: msg, sink: sink, reported: map[string]string{}}
}

// Report reports the problems of one rebuild (see Deduper).
func (d *Deduper) Report(problems []Problem) {
	type event struct{ kind, key, reason string }
	now := make(map[event]string, len(problems))
	var order []event
	for _, pr := range problems {
		e := event{pr.Kind, pr.Key, pr.Reason}
		if prev, ok := now[e]; ok {
			now[e] = prev + "; " + pr.Err.Error()
			continue
		}
		now[e] = pr.Err.Error()
		order = append(order, e)
	}
	reported := make(map[string]string, len(now))
	for _, e := range order {
		id, msg := e.kind+"/"+e.key+"/"+e.reason, now[e]
		reported[id] = msg
		if d.reported[id] == msg {
			continue
		}
		d.log.Warn(d.msg, "kind", e.kind, "object", e.key, "reason", e.reason, "err", msg)
		if d.sink != nil {
			d.sink(e.kind, e.key, e.reason, msg)
		}
	}
	d.reported = reported
}
