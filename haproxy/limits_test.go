package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseHardFDLimit(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{limits, 524288, false},
		{strings.Replace(limits, "524288 ", "unlimited", 1), -1, false},
		{"Limit Soft Hard Units\nMax cpu time unlimited unlimited seconds\n", 0, true},
		{"Max open files 1024\n", 0, true},
	} {
		got, err := parseHardFDLimit(strings.NewReader(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseHardFDLimit(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFDNeed(t *testing.T) {
	checked := Backend{Name: "a", Check: Check{Kind: CheckTCP}, Servers: make([]Server, 10)}
	unchecked := Backend{Name: "b", Check: Check{Kind: CheckNone}, Servers: make([]Server, 3)}
	m := Model{Frontends: make([]Frontend, 2), Backends: []Backend{checked, unchecked}}
	// 10 servers round up to 16 checked slots; unchecked slots cost none.
	if got, want := FDNeed(m), fdHeadroom+2+16; got != want {
		t.Errorf("FDNeed = %d, want %d", got, want)
	}
	m.Stats = &Stats{}
	if got, want := FDNeed(m), fdHeadroom+2+16+2; got != want {
		t.Errorf("FDNeed with stats = %d, want %d", got, want)
	}
}

// checkedModel is n frontends on loopback VIPs, each with a backend of
// health-checked slots (MinSlots each, all empty).
func checkedModel(n int, port uint16) Model {
	var m Model
	base := testVIP(0).As4()
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, base[1] ^ 0x40, byte(5 + i/250), byte(1 + i%250)})
		name := fmt.Sprintf("svc%04d_80", i)
		m.Frontends = append(m.Frontends, Frontend{Name: name, Bind: netip.AddrPortFrom(ip, port), Backend: name})
		m.Backends = append(m.Backends, Backend{Name: name, Check: Check{Kind: CheckTCP, Interval: time.Second, Rise: 1, Fall: 1}})
	}
	return m
}

// TestManagerFDLimit runs HAProxy under a hard file descriptor limit of
// 1,024: a config that `haproxy -c` accepts but whose worker could not
// start under that limit is refused before any reload with ErrFDLimit, the
// old config keeps serving, and the same structure is not tried again
// before the backoff ends.
func TestManagerFDLimit(t *testing.T) {
	const limit = 1024
	l := mustLabWrapped(t, "prlimit", fmt.Sprintf("--nofile=%d:%d", limit, limit))
	ctx := context.Background()
	a := mustBackend(t, "a")
	vip := netip.AddrPortFrom(l.vip, freePort(t, l.vip.String()))
	m := NewManager(ManagerConfig{Paths: l.paths})
	if r := m.Apply(ctx, httpModel(vip, a)); r.Err != nil {
		t.Fatalf("small config: %v", r.Err)
	}
	before := mustProc(t, l)

	// 120 backends × 8 checked slots + 120 listeners + headroom > 1,024.
	big := checkedModel(120, freePort(t, "127.0.0.1"))
	big.Frontends = append(big.Frontends, httpModel(vip, a).Frontends...)
	big.Backends = append(big.Backends, httpModel(vip, a).Backends...)
	if need := FDNeed(big); need <= limit {
		t.Fatalf("test model needs %d descriptors, not more than the limit %d", need, limit)
	}
	data, err := Render(big.normalize())
	if err != nil {
		t.Fatal(err)
	}
	candidate := filepath.Join(t.TempDir(), "big.cfg")
	if err := os.WriteFile(candidate, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.paths.Check(ctx, candidate); err != nil {
		t.Fatalf("haproxy -c refuses the big config, so the test shows nothing: %v", err)
	}
	r := m.Apply(ctx, big)
	if !errors.Is(r.Err, ErrFDLimit) || r.Reloaded {
		t.Fatalf("big config under a %d descriptor limit: reloaded %v, err %v; want ErrFDLimit without a reload", limit, r.Reloaded, r.Err)
	}
	if !strings.Contains(r.Err.Error(), "LimitNOFILE") {
		t.Errorf("error does not tell the operator what to raise: %v", r.Err)
	}
	t.Logf("refused: %v", r.Err)
	if after := mustProc(t, l); after.Reloads != before.Reloads {
		t.Errorf("HAProxy was reloaded (%d -> %d) for a config it cannot start", before.Reloads, after.Reloads)
	}
	if body, err := get(vip.String()); err != nil || body != "a" {
		t.Errorf("old config stopped serving: %q, %v", body, err)
	}
	r = m.Apply(ctx, big)
	if !errors.Is(r.Err, ErrBackoff) || !errors.Is(r.Err, ErrFDLimit) {
		t.Errorf("same structure again at once: %v; want ErrBackoff wrapping ErrFDLimit", r.Err)
	}
	// A different structure is tried at once (and works).
	if r := m.Apply(ctx, httpModel(vip, a)); r.Err != nil {
		t.Errorf("small config after the refusal: %v", r.Err)
	}
}
