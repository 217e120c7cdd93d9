package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
)

// TestReportProblems: each object's problem becomes one Event with its
// reason; a problem that persists is not raised again on the next render,
// one whose message changes is, and one that went away and came back is.
func TestReportProblems(t *testing.T) {
	var got []string
	p := New(&config.Config{}, nil, func(kind, key, reason, msg string) {
		got = append(got, fmt.Sprintf("%s %s %s: %s", kind, key, reason, msg))
	}, slog.New(slog.DiscardHandler))
	bad := lbconfig.Problem{Kind: lbconfig.KindService, Key: "t/a", Err: fmt.Errorf("x: %w", lbconfig.ErrAnnotation)}
	node := lbconfig.Problem{Kind: lbconfig.KindNode, Key: "n1", Err: fmt.Errorf("y: %w", lbconfig.ErrEndpoint)}
	udp := lbconfig.Problem{Kind: lbconfig.KindService, Key: "t/a", Err: fmt.Errorf("z: %w", lbconfig.ErrUnsupportedProtocol)}
	steps := []struct {
		problems []lbconfig.Problem
		want     []string
	}{
		{[]lbconfig.Problem{bad, node, udp}, []string{
			"Service t/a InvalidAnnotation: x: " + lbconfig.ErrAnnotation.Error(),
			"Node n1 InvalidEndpoint: y: " + lbconfig.ErrEndpoint.Error(),
			"Service t/a UnsupportedProtocol: z: " + lbconfig.ErrUnsupportedProtocol.Error()}},
		{[]lbconfig.Problem{bad, node, udp}, nil},
		{[]lbconfig.Problem{node}, nil},
		{[]lbconfig.Problem{bad, node}, []string{"Service t/a InvalidAnnotation: x: " + lbconfig.ErrAnnotation.Error()}},
	}
	for i, s := range steps {
		got = nil
		p.reportProblems(s.problems)
		if d := cmp.Diff(s.want, got); d != "" {
			t.Errorf("render %d: events (-want +got):\n%s", i, d)
		}
	}
}

func TestReasonFor(t *testing.T) {
	for err, want := range map[error]string{
		haproxy.ErrValidate:             ReasonHAProxyConfigInvalid,
		haproxy.ErrInvalidModel:         ReasonHAProxyConfigInvalid,
		haproxy.ErrReload:               ReasonHAProxyBindFailed,
		certs.ErrSecret:                 ReasonInvalidTLSSecret,
		lbconfig.ErrEndpoint:            ReasonInvalidEndpoint,
		lbconfig.ErrTooManyEndpoints:    ReasonTooManyEndpoints,
		lbconfig.ErrUnsupportedProtocol: ReasonUnsupportedProtocol,
		lbconfig.ErrNoNodePort:          ReasonNoNodePort,
		lbconfig.ErrPortNotAllocated:    ReasonPortNotAllocated,
		lbconfig.ErrAnnotation:          ReasonInvalidAnnotation,
		errors.New("anything else"):     ReasonInvalidAnnotation,
	} {
		if got := reasonFor(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("reasonFor(%v) = %s, want %s", err, got, want)
		}
	}
}
