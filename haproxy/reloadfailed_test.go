package haproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// TestReloadFailedCanceledBlamesNoService: a reload whose confirmation
// edged stopped waiting for (shutdown) is not HAProxy refusing anything:
// no Service is named (and so none is quarantined), although the model's
// bind really conflicts with another listener (which a refused reload
// would blame on its Service), and the live state is unknown, so the next
// apply reloads.
func TestReloadFailedCanceledBlamesNoService(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := Model{Frontends: []Frontend{{Name: "web", Owner: "ns/web", Bind: netip.MustParseAddrPort(ln.Addr().String())}}}
	s := Model{}.structure()
	m := &Manager{live: &s}
	for _, err := range []error{context.Canceled, context.DeadlineExceeded} {
		r := m.reloadFailed(n, fmt.Errorf("waiting for reload confirmation: %w", err))
		if r.Refused != nil {
			t.Errorf("%v: refused %v, want none", err, r.Refused)
		}
		if r.Err == nil || m.live != nil {
			t.Errorf("%v: err %v, live %v: want the error kept and live unknown", err, r.Err, m.live)
		}
	}
}
