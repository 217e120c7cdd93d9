package failover

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/goldentooth/edged/test/edgelab"
)

// TestFailoverSmoke runs one trial of the benchmark's key scenarios, so
// the benchmark keeps working: an edged owner crash recovers, edged's
// partition has no split brain, and the recorder does see keepalived's
// split brain (so a zero for edged means something).
func TestFailoverSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver, keepalived)")
	}
	if err := keepalivedBinary(); err != nil {
		t.Fatal(err)
	}
	l, vips := newLab(t)

	smp, err := edgedTrial(l, vips, ownerCrash, 0)
	for retry := 0; retry < maxRetries && errors.Is(err, errMovedEarly); retry++ {
		smp, err = edgedTrial(l, vips, ownerCrash, 0)
	}
	if err != nil {
		t.Fatalf("edged owner crash: %v", err)
	}
	t.Logf("edged owner crash: lease moved after %v, client gap %v, longest outage %v", smp.moved, smp.gap.First, smp.gap.Outage)

	r, err := edgedSplitTrial(l, vips, 0)
	if err != nil {
		t.Fatalf("edged partition: %v", err)
	}
	t.Logf("edged partition: %s", describe(r))
	if r.Dual != 0 || r.Answered == 0 {
		t.Errorf("edged partition: %s; want no request answered by two MACs", describe(r))
	}

	stopEdged(l)
	vip := netip.MustParseAddr(edgelab.FreeVIPBase)
	if err := l.ServeVIP(vip); err != nil {
		t.Fatal(err)
	}
	v := newVRRP(l, "smoke-v3", 3, "0.01", vip, 60)
	if err := v.startAll(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.stopAll)
	if smp, err = vrrpTrial(v); err != nil {
		t.Fatalf("keepalived crash: %v", err)
	}
	t.Logf("keepalived v3 10ms master crash: client gap %v", smp.gap.First)
	if r, err = vrrpSplitTrial(v); err != nil {
		t.Fatalf("keepalived partition: %v", err)
	}
	t.Logf("keepalived partition: %s", describe(r))
	if r.Dual == 0 {
		t.Errorf("keepalived partition: %s; the recorder saw no split brain, want two masters answering", describe(r))
	}
}
