package raft

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLeaseRecorder makes sure the overlap invariant can fail.
func TestLeaseRecorder(t *testing.T) {
	ip := netip.MustParseAddr("10.4.11.1")
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name string
		feed func(r *leaseRecorder)
		want int
	}{
		{"handover after end", func(r *leaseRecorder) {
			r.LeaseHeld("a", ip, at(0), at(200))
			r.LeaseHeld("b", ip, at(200), at(400))
		}, 0},
		{"extension merges", func(r *leaseRecorder) {
			r.LeaseHeld("a", ip, at(0), at(200))
			r.LeaseHeld("a", ip, at(50), at(250))
			r.LeaseHeld("b", ip, at(240), at(400))
		}, 1},
		{"drop truncates", func(r *leaseRecorder) {
			r.LeaseHeld("a", ip, at(0), at(200))
			r.LeaseDropped("a", ip, at(100))
			r.LeaseHeld("b", ip, at(150), at(400))
		}, 0},
		{"same host overlap is fine", func(r *leaseRecorder) {
			r.LeaseHeld("a", ip, at(0), at(200))
			r.LeaseHeld("a", ip, at(300), at(500))
		}, 0},
		{"overlap detected", func(r *leaseRecorder) {
			r.LeaseHeld("a", ip, at(0), at(200))
			r.LeaseHeld("b", ip, at(199), at(400))
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newLeaseRecorder()
			tt.feed(r)
			if d := cmp.Diff(tt.want, len(r.overlaps())); d != "" {
				t.Errorf("overlaps (-want +got):\n%s\n%v", d, r.overlaps())
			}
		})
	}
}
