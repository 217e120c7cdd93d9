package nft

// report logs and raises an Event for each problem whose message changed
// since the last build: one that persists is not repeated on every build,
// one that goes away and comes back is.
func (p *Part) report(problems []Problem) {
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
		if p.reported[id] == msg {
			continue
		}
		p.log.Warn("kubernetes object not fully forwarded", "kind", e.kind, "object", e.key, "reason", e.reason, "err", msg)
		if p.events != nil {
			p.events(e.kind, e.key, e.reason, msg)
		}
	}
	p.reported = reported
}
