package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

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
	udp := lbconfig.Problem{Kind: lbconfig.KindService, Key: "t/a", Err: fmt.Errorf("z: %w", lbconfig.ErrNoNodePort)}
	steps := []struct {
		problems []lbconfig.Problem
		want     []string
	}{
		{[]lbconfig.Problem{bad, node, udp}, []string{
			"Service t/a InvalidAnnotation: x: " + lbconfig.ErrAnnotation.Error(),
			"Node n1 InvalidEndpoint: y: " + lbconfig.ErrEndpoint.Error(),
			"Service t/a NoNodePort: z: " + lbconfig.ErrNoNodePort.Error()}},
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
		haproxy.ErrValidate:          ReasonHAProxyConfigInvalid,
		haproxy.ErrInvalidModel:      ReasonHAProxyConfigInvalid,
		haproxy.ErrReload:            ReasonHAProxyBindFailed,
		certs.ErrSecret:              ReasonInvalidTLSSecret,
		lbconfig.ErrEndpoint:         ReasonInvalidEndpoint,
		lbconfig.ErrTooManyEndpoints: ReasonTooManyEndpoints,
		lbconfig.ErrSourceRanges:     ReasonInvalidSourceRanges,
		lbconfig.ErrSessionAffinity:  ReasonInvalidSessionAffinity,
		lbconfig.ErrNoNodePort:       ReasonNoNodePort,
		lbconfig.ErrPortNotAllocated: ReasonPortNotAllocated,
		lbconfig.ErrAnnotation:       ReasonInvalidAnnotation,
		errors.New("anything else"):  ReasonInvalidAnnotation,
	} {
		if got := reasonFor(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("reasonFor(%v) = %s, want %s", err, got, want)
		}
	}
}

// TestSettingsPerVersion: a Service's annotations are parsed once per
// resourceVersion and forgotten when the Service is gone.
func TestSettingsPerVersion(t *testing.T) {
	p := New(&config.Config{}, nil, nil, slog.New(slog.DiscardHandler))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "a", ResourceVersion: "1",
		Annotations: map[string]string{lbconfig.AnnMode: "http"}}}
	if s, err := p.settings(svc); err != nil || s.Mode != haproxy.ModeHTTP {
		t.Fatalf("settings = %+v, %v", s, err)
	}
	svc.Annotations[lbconfig.AnnMode] = "tcp" // same version: the parse is kept
	if s, _ := p.settings(svc); s.Mode != haproxy.ModeHTTP {
		t.Errorf("same version parsed again: mode %s", s.Mode)
	}
	svc.ResourceVersion = "2"
	if s, _ := p.settings(svc); s.Mode != haproxy.ModeTCP {
		t.Errorf("new version not parsed: mode %s", s.Mode)
	}
	p.forgetParsed(nil)
	if len(p.parsed) != 0 {
		t.Errorf("%d parsed Services kept after they were gone", len(p.parsed))
	}
}
