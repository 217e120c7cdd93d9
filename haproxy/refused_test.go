package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/test/wait"
)

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"00000000000000000000000000000000:01BB", "[::]:443"},
		{"0000000000000000FFFF00000B0B040A:0050", "10.4.11.11:80"}, // v4-mapped on a v6 socket
		{"000000FD00000000000000000400000A:0050", "[fd00::a00:4]:80"},
	} {
		got, ok := parseProcAddr(tc.in)
		if !ok || got.String() != tc.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "zz:1", "0100007F", "0100007F:xyz", "01007F:0050"} {
		if _, ok := parseProcAddr(bad); ok {
			t.Errorf("parseProcAddr(%q) accepted", bad)
		}
	}
}

func TestBindConflicts(t *testing.T) {
	vip := netip.MustParseAddr("10.4.11.1")
	fe := func(owner string, port uint16) Frontend {
		return Frontend{Name: fmt.Sprintf("%s_%d", owner, port), Owner: owner, Bind: netip.AddrPortFrom(vip, port)}
	}
	n := Model{Frontends: []Frontend{fe("a", 80), fe("b", 8443), fe("c", 9000), fe("d", 53)}}
	own := map[netip.AddrPort]bool{netip.MustParseAddrPort("10.4.11.1:80"): true}
	listening := map[netip.AddrPort]bool{
		netip.MustParseAddrPort("10.4.11.1:80"):   true, // a's own, already live: not a conflict
		netip.MustParseAddrPort("0.0.0.0:8443"):   true, // another process on the wildcard
		netip.MustParseAddrPort("[::]:53"):        true, // a dual-stack wildcard
		netip.MustParseAddrPort("127.0.0.1:9000"): true, // another address: no conflict
	}
	got := bindConflicts(n, own, listening)
	if d := cmp.Diff([]string{"b", "d"}, sortedKeys(got)); d != "" {
		t.Errorf("owners (-want +got):\n%s", d)
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestManagerBindConflict: a frontend whose port another process holds on
// the wildcard makes the reload fail; the Result names only its owner, and
// the old worker's structure stays known, so another Service's endpoint
// change still goes through the runtime API without a reload.
func TestManagerBindConflict(t *testing.T) {
	ctx := context.Background()
	l := mustLab(t)
	a, b := mustBackend(t, "a"), mustBackend(t, "b")
	good := httpModel(netip.AddrPortFrom(l.vip, freePort(t, "127.0.0.1")), a)
	for i := range good.Frontends {
		good.Frontends[i].Owner = "ns/good"
	}
	good.Backends[0].Owner = "ns/good"
	m := NewManager(ManagerConfig{Paths: l.paths})
	if r := m.Apply(ctx, good); r.Err != nil {
		t.Fatalf("first apply: %v", r.Err)
	}
	busy, err := net.Listen("tcp4", "0.0.0.0:0") // no SO_REUSEPORT: HAProxy cannot share it
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := uint16(busy.Addr().(*net.TCPAddr).Port)
	bad := good
	bad.Frontends = append(append([]Frontend(nil), good.Frontends...),
		Frontend{Name: "ns_bad", Owner: "ns/bad", Bind: netip.AddrPortFrom(l.vip, port), Backend: good.Backends[0].Name})
	r := m.Apply(ctx, bad)
	if !errors.Is(r.Err, ErrReload) {
		t.Fatalf("apply with a taken port = %+v, want ErrReload", r)
	}
	if d := cmp.Diff([]string{"ns/bad"}, sortedKeys(r.Refused)); d != "" {
		t.Fatalf("refused (-want +got):\n%s", d)
	}
	if !strings.Contains(r.Refused["ns/bad"], fmt.Sprintf("0.0.0.0:%d", port)) {
		t.Errorf("refusal %q does not name the listener", r.Refused["ns/bad"])
	}
	// Right after a restart edged has no live model: HAProxy's own
	// listeners (the loaded file's binds) must still not be blamed.
	restarted := NewManager(ManagerConfig{Paths: l.paths})
	r = restarted.Apply(ctx, bad)
	if d := cmp.Diff([]string{"ns/bad"}, sortedKeys(r.Refused)); !errors.Is(r.Err, ErrReload) || d != "" {
		t.Fatalf("after a restart: %v, refused (-want +got):\n%s", r.Err, d)
	}
	moved := good
	moved.Backends = []Backend{good.Backends[0]}
	moved.Backends[0].Servers = []Server{{Addr: b.addr}}
	if r := m.Apply(ctx, moved); r.Err != nil || r.Reloaded {
		t.Fatalf("endpoint change after the failed reload = %+v, want a runtime update without reload", r)
	}
	wait.ForBool(t, 10*time.Second, "traffic on the moved endpoint", func() bool {
		body, err := get(good.Frontends[0].Bind.String())
		return err == nil && body == "b"
	})
}

// TestManagerRefusalRedacted: a section `haproxy -c` refuses is reported
// under its owner alone, without the host's file paths.
func TestManagerRefusalRedacted(t *testing.T) {
	l := mustLab(t)
	a := mustBackend(t, "a")
	m := httpModel(netip.AddrPortFrom(l.vip, freePort(t, "127.0.0.1")), a)
	m.Frontends[0].Owner, m.Backends[0].Owner = "ns/good", "ns/good"
	missing := filepath.Join(t.TempDir(), "missing.pem")
	m.Frontends = append(m.Frontends, Frontend{Name: "ns_tls", Owner: "ns/tls", Mode: ModeHTTP,
		Bind: netip.AddrPortFrom(l.vip, freePort(t, "127.0.0.1")), Backend: m.Backends[0].Name, CertFile: missing})
	r := NewManager(ManagerConfig{Paths: l.paths}).Apply(context.Background(), m)
	if !errors.Is(r.Err, ErrValidate) {
		t.Fatalf("apply = %+v, want ErrValidate", r)
	}
	if d := cmp.Diff([]string{"ns/tls"}, sortedKeys(r.Refused)); d != "" {
		t.Fatalf("refused (-want +got):\n%s", d)
	}
	if why := r.Refused["ns/tls"]; why == "" || strings.Contains(why, "/") {
		t.Errorf("refusal %q: want HAProxy's words without paths", why)
	}
}

func TestParseBind(t *testing.T) {
	for in, want := range map[string]string{
		"10.4.11.1:80": "10.4.11.1:80", "[fd00::1]:443": "[fd00::1]:443", ":8404": "0.0.0.0:8404",
		"*:80": "0.0.0.0:80", "ipv4@10.0.0.1:1": "10.0.0.1:1", "[::]:53": "[::]:53",
	} {
		if got, ok := parseBind(in); !ok || got.String() != want {
			t.Errorf("parseBind(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"unix@/run/x.sock", "/run/x.sock", "10.0.0.1:80-90", "abns@x"} {
		if got, ok := parseBind(bad); ok {
			t.Errorf("parseBind(%q) = %v, want refused", bad, got)
		}
	}
}
