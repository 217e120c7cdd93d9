package l2

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/test/wait"
)

// recorder is the one log of what a Speaker did to lo and the announcer,
// in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

// take returns the events since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// fakeTable records the leases a Speaker hands to announce.Responder.
type fakeTable struct{ r *recorder }

func (f fakeTable) SetLeases(ls []announce.Lease) {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%s%v", l.IP, l.Interfaces)
	}
	f.r.add("announce %v", out)
}
func (f fakeTable) Renew(time.Time) { f.r.add("renew") }
func (f fakeTable) Stop()           { f.r.add("stop") }

// fakeLo records the VIPs a Speaker puts on lo.
type fakeLo struct{ r *recorder }

func (f fakeLo) Set(ips []netip.Addr) error { f.r.add("lo %v", ips); return nil }

// startedSpeaker is a Speaker as Start leaves it, with lo and the announcer
// replaced by r and no interface served.
func startedSpeaker(t *testing.T, inForce func() *config.Config, r *recorder) *Speaker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := announce.NewResponder().NewInterfaces(ctx, func(ctx context.Context, _ string) { <-ctx.Done() })
	s := New(inForce(), inForce, slog.New(slog.DiscardHandler))
	s.ann, s.vips, s.served, s.cancel = fakeTable{r}, fakeLo{r}, served, cancel
	s.linger = 0 // TestHandoverLinger sets its own
	t.Cleanup(cancel)
	return s
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// TestSetLeasesOrder: a new VIP is on lo before it is announced, a
// withdrawn one is no longer announced before it leaves lo, a renewal only
// moves the lease end, and lo holds every leased IP, announced or not.
func TestSetLeasesOrder(t *testing.T) {
	base := mustConfig(t, scopeYAML)
	withD := mustConfig(t, scopeYAML+"  - {name: d1, ipAddressPools: [d], interfaces: [eth4]}\n")
	// Pool a removed (its advertisements with it).
	withoutA := mustConfig(t, strings.NewReplacer("  - {name: a, addresses: [10.0.1.0/24]}\n", "",
		"  - {name: a1, ipAddressPools: [a], interfaces: [eth0]}\n", "",
		"  - {name: a2, ipAddressPools: [a], interfaces: [eth1]}\n", "").Replace(scopeYAML)+"  - {name: d1, ipAddressPools: [d], interfaces: [eth4]}\n")
	var mu sync.Mutex
	cur := base
	inForce := func() *config.Config { mu.Lock(); defer mu.Unlock(); return cur }
	r := &recorder{}
	s := startedSpeaker(t, inForce, r)
	until := time.Now().Add(time.Minute)

	steps := []struct {
		name string
		cfg  *config.Config // in force from this step on
		ips  []netip.Addr
		want []string
	}{
		{"first lease: on lo, then announced", base, addrs("10.0.1.5"),
			[]string{"lo [10.0.1.5]", "announce [10.0.1.5[eth0 eth1]]"}},
		{"renewal: only the end moves", base, addrs("10.0.1.5"),
			[]string{"renew"}},
		{"an added IP: on lo first", base, addrs("10.0.1.5", "10.0.2.5"),
			[]string{"lo [10.0.1.5 10.0.2.5]", "announce [10.0.1.5[eth0 eth1] 10.0.2.5[eth9]]"}},
		{"a withdrawn IP: unannounced first", base, addrs("10.0.2.5"),
			[]string{"announce [10.0.2.5[eth9]]", "lo [10.0.2.5]"}},
		{"one withdrawn, one added: on lo first", base, addrs("10.0.1.6"),
			[]string{"lo [10.0.1.6]", "announce [10.0.1.6[eth0 eth1]]"}},
		{"a pool no advertisement announces: on lo only", base, addrs("10.0.1.6", "10.0.4.5"),
			[]string{"lo [10.0.1.6 10.0.4.5]", "announce [10.0.1.6[eth0 eth1]]"}},
		{"advertisements changed, same IPs: announcements only", withD, addrs("10.0.1.6", "10.0.4.5"),
			[]string{"announce [10.0.1.6[eth0 eth1] 10.0.4.5[eth4]]"}},
		{"a pool edit leaves a leased IP out: still announced where it was", withoutA, addrs("10.0.1.6", "10.0.4.5"),
			[]string{"announce [10.0.1.6[eth0 eth1] 10.0.4.5[eth4]]"}},
		{"an IP in no pool that never was announced: on every served interface", withoutA, addrs("10.0.1.6", "10.0.4.5", "10.0.9.9"),
			[]string{"lo [10.0.1.6 10.0.4.5 10.0.9.9]", "announce [10.0.1.6[eth0 eth1] 10.0.4.5[eth4] 10.0.9.9[]]"}},
		{"no lease", withD, nil,
			[]string{"announce []", "lo []"}},
	}
	for _, st := range steps {
		mu.Lock()
		cur = st.cfg
		mu.Unlock()
		s.SetLeases(st.ips, until)
		if diff := cmp.Diff(st.want, r.take()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop"}, r.take()); diff != "" { // lo is empty already
		t.Errorf("Close (-want +got):\n%s", diff)
	}
}

// TestCloseWithoutStart: a Speaker that never started has nothing to undo.
func TestCloseWithoutStart(t *testing.T) {
	s := New(mustConfig(t, scopeYAML), nil, slog.New(slog.DiscardHandler))
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
}

// TestHandoverLinger: an IP given up is unannounced at once but stays on
// lo for the linger, then leaves it by itself; one leased again meanwhile
// simply stays; Close waits out the last linger before clearing lo.
func TestHandoverLinger(t *testing.T) {
	cfg := mustConfig(t, scopeYAML)
	r := &recorder{}
	s := startedSpeaker(t, func() *config.Config { return cfg }, r)
	s.linger = 300 * time.Millisecond
	until := time.Now().Add(time.Minute)

	s.SetLeases(addrs("10.0.1.5", "10.0.1.6"), until)
	r.take()
	given := time.Now()
	s.SetLeases(addrs("10.0.1.6"), until)
	if diff := cmp.Diff([]string{"announce [10.0.1.6[eth0 eth1]]"}, r.take()); diff != "" {
		t.Fatalf("give one up (-want +got):\n%s", diff)
	}
	var got []string
	wait.ForBool(t, 5*time.Second, "10.0.1.5 to leave lo", func() bool {
		got = append(got, r.take()...)
		return len(got) > 0
	})
	if held := time.Since(given); held < s.linger {
		t.Errorf("10.0.1.5 left lo after %v, before the linger of %v", held, s.linger)
	}
	if diff := cmp.Diff([]string{"lo [10.0.1.6]"}, got); diff != "" {
		t.Errorf("after the linger (-want +got):\n%s", diff)
	}

	// Given up and leased again within the linger: never off lo.
	s.SetLeases(nil, until)
	s.SetLeases(addrs("10.0.1.6"), until)
	if diff := cmp.Diff([]string{"announce []", "announce [10.0.1.6[eth0 eth1]]"}, r.take()); diff != "" {
		t.Errorf("back within the linger (-want +got):\n%s", diff)
	}

	// Whether the linger's timer or Close clears lo, it is cleared once.
	s.SetLeases(nil, until)
	closing := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(closing); took < s.linger/2 {
		t.Errorf("Close returned after %v, before the linger", took)
	}
	if diff := cmp.Diff([]string{"announce []", "stop", "lo []"}, r.take()); diff != "" {
		t.Errorf("Close (-want +got):\n%s", diff)
	}
}
