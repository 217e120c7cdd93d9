package haproxy

import (
	"context"
	"fmt"
	"testing"
)

// TestReloadFailedCanceledBlamesNoService: a reload whose confirmation
// edged stopped waiting for (shutdown) is not HAProxy refusing anything:
// no Service is named (and so none is quarantined), and the live state is
// unknown, so the next apply reloads.
func TestReloadFailedCanceledBlamesNoService(t *testing.T) {
	s := Model{}.structure()
	m := &Manager{live: &s}
	for _, err := range []error{context.Canceled, context.DeadlineExceeded} {
		r := m.reloadFailed(Model{}, fmt.Errorf("waiting for reload confirmation: %w", err))
		if r.Refused != nil {
			t.Errorf("%v: refused %v, want none", err, r.Refused)
		}
		if r.Err == nil || m.live != nil {
			t.Errorf("%v: err %v, live %v: want the error kept and live unknown", err, r.Err, m.live)
		}
	}
}
