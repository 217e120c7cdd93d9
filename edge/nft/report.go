package nft

import "github.com/goldentooth/edged/edge/report"

// report logs and raises an Event for each problem whose message changed
// since the last build (report.Deduper).
func (p *Part) report(problems []Problem) {
	rs := make([]report.Problem, len(problems))
	for i, pr := range problems {
		rs[i] = report.Problem{Kind: pr.Kind, Key: pr.Key, Reason: pr.Reason, Err: pr.Err}
	}
	p.reporter.Report(rs)
}
