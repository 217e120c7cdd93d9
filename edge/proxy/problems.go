package proxy

import (
	"errors"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/edge/report"
	"github.com/goldentooth/edged/haproxy"
)

// Event reasons the part raises on Services.
const (
	ReasonInvalidAnnotation    = "InvalidAnnotation"
	ReasonInvalidTLSSecret     = "InvalidTLSSecret"
	ReasonHAProxyConfigInvalid = "HAProxyConfigInvalid"
	// ReasonHAProxyBindFailed: HAProxy could not listen on one of the
	// Service's VIP:ports at reload (another process holds the port).
	ReasonHAProxyBindFailed = "HAProxyBindFailed"
	// ReasonInvalidEndpoint: an endpoint or Node address was refused
	// (zone, mapped, loopback, link-local...) and left out.
	ReasonInvalidEndpoint = "InvalidEndpoint"
	// ReasonTooManyEndpoints: a backend was cut to haproxy.MaxServers.
	ReasonTooManyEndpoints = "TooManyEndpoints"
	// ReasonNoNodePort: nodePort backends are configured but the port has
	// no NodePort (allocateLoadBalancerNodePorts: false).
	ReasonNoNodePort = "NoNodePort"
	// ReasonPortNotAllocated: a port the allocation did not grant (a
	// refused sharing change) is not served.
	ReasonPortNotAllocated = "PortNotAllocated"
	// ReasonInvalidSourceRanges: a loadBalancerSourceRanges entry edged
	// cannot enforce exactly; the Service is not served (never served open).
	ReasonInvalidSourceRanges = "InvalidSourceRanges"
	// ReasonInvalidSessionAffinity: a sessionAffinity edged cannot honour;
	// the Service is not served.
	ReasonInvalidSessionAffinity = "InvalidSessionAffinity"
)

// reportProblems logs and raises an Event for each problem whose message
// changed since the last render: a problem that persists is not repeated
// on every render (each render would otherwise write an Event per bad
// object to the apiserver), one that goes away and comes back is.
func (p *Part) reportProblems(problems []lbconfig.Problem) {
	rs := make([]report.Problem, len(problems))
	for i, pr := range problems {
		rs[i] = report.Problem{Kind: pr.Kind, Key: pr.Key, Reason: reasonFor(pr.Err), Err: pr.Err}
	}
	p.reporter.Report(rs)
}

func (p *Part) event(kind, key, reason, msg string) {
	if p.events != nil {
		p.events(kind, key, reason, msg)
	}
}

// reasonFor maps a Problem's cause to its Event reason.
func reasonFor(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{haproxy.ErrValidate, ReasonHAProxyConfigInvalid},
		{haproxy.ErrInvalidModel, ReasonHAProxyConfigInvalid},
		{haproxy.ErrReload, ReasonHAProxyBindFailed},
		{certs.ErrSecret, ReasonInvalidTLSSecret},
		{lbconfig.ErrEndpoint, ReasonInvalidEndpoint},
		{lbconfig.ErrTooManyEndpoints, ReasonTooManyEndpoints},
		{lbconfig.ErrNoNodePort, ReasonNoNodePort},
		{lbconfig.ErrPortNotAllocated, ReasonPortNotAllocated},
		{lbconfig.ErrSourceRanges, ReasonInvalidSourceRanges},
		{lbconfig.ErrSessionAffinity, ReasonInvalidSessionAffinity},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ReasonInvalidAnnotation
}
