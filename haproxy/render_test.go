package haproxy

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleModel() Model {
	return Model{
		Stats: &Stats{Bind: netip.MustParseAddrPort("127.0.0.1:8404"), URI: "/stats", User: "admin", Password: "pw", Refresh: 10 * time.Second, Prometheus: netip.MustParseAddrPort("127.0.0.1:8404")},
		Frontends: []Frontend{
			{Name: "b_fe", Bind: netip.MustParseAddrPort("10.4.11.2:443"), Backend: "b", CertFile: "/etc/edged/certs/x.pem",
				SourceRanges: []netip.Prefix{netip.MustParsePrefix("10.4.0.0/20"), netip.MustParsePrefix("fd00::/8")}, ClientTimeout: 90 * time.Minute},
			{Name: "a_fe", Bind: netip.MustParseAddrPort("10.4.11.1:80"), Mode: ModeHTTP, Backend: "a",
				SourceRanges: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, AcceptProxy: true},
		},
		Backends: []Backend{
			{Name: "b", ProxyV2: true, Affinity: 3 * time.Hour, ConnectTimeout: 1500 * time.Millisecond, ServerTimeout: 2 * time.Hour,
				Servers: []Server{{Addr: netip.MustParseAddrPort("10.244.0.9:443")}}},
			{Name: "a", Mode: ModeHTTP, Check: Check{Kind: CheckHTTP, Path: "/healthz", Host: "a.example", Interval: time.Second, Rise: 2, Fall: 3},
				TunnelTimeout: 10 * time.Minute,
				Servers:       []Server{{Addr: netip.MustParseAddrPort("10.244.0.6:8080")}, {Addr: netip.MustParseAddrPort("10.244.0.5:8080")}}},
		},
		Timeouts: Timeouts{Client: 12 * time.Hour},
	}
}

func TestRenderDeterministicAndValid(t *testing.T) {
	m := sampleModel()
	first, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	m.Frontends[0], m.Frontends[1] = m.Frontends[1], m.Frontends[0]
	m.Backends[0], m.Backends[1] = m.Backends[1], m.Backends[0]
	second, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(first), string(second)); d != "" {
		t.Errorf("render depends on input order (-first +second):\n%s", d)
	}
	for _, want := range []string{
		"http-check send meth GET uri /healthz hdr Host a.example",
		"server s1 10.244.0.5:8080 check",
		"send-proxy-v2",
		"crt /etc/edged/certs/x.pem ssl",
		"http-request use-service prometheus-exporter if { path /metrics }",
		"stats auth admin:pw",
		// timeouts: the model's defaults, DefaultTimeouts' for the rest,
		// each section's own, and the tunnel timeout in http backends only
		"timeout client 12h\n", "timeout server 24h\n", "timeout connect 5s\n", "timeout http-request 5s\n",
		"timeout client 90m\n", "timeout connect 1500ms\n", "timeout server 2h\n", "timeout tunnel 10m\n",
		// source ranges on the connection, or on the session behind accept-proxy
		"acl edged_src src 10.4.0.0/20 fd00::/8\n  timeout client 90m\n  tcp-request connection reject unless edged_src\n",
		"bind 10.4.11.1:80 name vip accept-proxy\n  acl edged_src src 192.168.0.0/16\n  tcp-request session reject unless edged_src\n",
		// affinity and the client address
		"stick on src\n  stick-table type ipv6 size 100k expire 3h\n",
		"mode http\n  balance roundrobin\n  option forwardfor\n",
	} {
		if !bytes.Contains(first, []byte(want)) {
			t.Errorf("render lacks %q:\n%s", want, first)
		}
	}
	if n := bytes.Count(first, []byte("timeout tunnel")); n != 1 {
		t.Errorf("%d tunnel timeouts, want 1 (the http backend's):\n%s", n, first)
	}
	// haproxy -c accepts it (the cert file must exist for that).
	dir := t.TempDir()
	m.Frontends[1].CertFile = ""
	m.Frontends[0].CertFile = ""
	data, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	p := Paths{Binary: mustHAProxyBin(t), Config: filepath.Join(dir, "edged.cfg")}
	if err := p.WriteChecked(context.Background(), data); err != nil {
		t.Fatalf("haproxy -c refused the render: %v", err)
	}
	if err := p.WriteChecked(context.Background(), []byte("frontend x\n bogus\n")); !errors.Is(err, ErrValidate) {
		t.Errorf("bogus config: err = %v, want ErrValidate", err)
	}
	if got, _ := os.ReadFile(p.Config); !bytes.Equal(got, data) {
		t.Error("live file changed by a refused write")
	}
}

// TestRenderChunksAreOneFile: rendering a parser per chunk of sections
// gives byte for byte the file one parser for everything gives.
func TestRenderChunksAreOneFile(t *testing.T) {
	m := slottedModel(3*renderChunk + 5)
	m.Stats = sampleModel().Stats
	whole, err := render(m, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	chunked, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(whole), string(chunked)); d != "" {
		t.Errorf("chunked render differs (-one parser +chunks):\n%s", d)
	}
	if n := bytes.Count(chunked, []byte("\nbackend ")); n != len(m.Backends) {
		t.Errorf("%d backends rendered, want %d", n, len(m.Backends))
	}
}

func TestValidateRejectsInjection(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Model)
	}{
		{"newline in path", func(m *Model) { m.Backends[1].Check.Path = "/x\n  server evil 1.2.3.4:1" }},
		{"space in host", func(m *Model) { m.Backends[1].Check.Host = "a b" }},
		{"space in name", func(m *Model) { m.Backends[0].Name = "b x" }},
		{"unknown backend", func(m *Model) { m.Frontends[0].Backend = "nope" }},
		{"bad balance", func(m *Model) { m.Backends[0].Balance = "hdr(x)" }},
		{"quote in password", func(m *Model) { m.Stats.Password = `p"w` }},
		{"zero port", func(m *Model) { m.Frontends[0].Bind = netip.MustParseAddrPort("10.4.11.9:0") }},
		{"unmasked range", func(m *Model) { m.Frontends[0].SourceRanges = []netip.Prefix{netip.MustParsePrefix("10.4.0.1/20")} }},
		{"mapped range", func(m *Model) {
			m.Frontends[0].SourceRanges = []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}
		}},
		{"zero range", func(m *Model) { m.Frontends[0].SourceRanges = []netip.Prefix{{}} }},
		{"too many ranges", func(m *Model) {
			m.Frontends[0].SourceRanges = make([]netip.Prefix, MaxSourceRanges+1)
			for i := range m.Frontends[0].SourceRanges {
				m.Frontends[0].SourceRanges[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
			}
		}},
		{"client timeout too short", func(m *Model) { m.Frontends[0].ClientTimeout = time.Millisecond }},
		{"server timeout too long", func(m *Model) { m.Backends[0].ServerTimeout = 8 * 24 * time.Hour }},
		{"connect timeout negative", func(m *Model) { m.Backends[0].ConnectTimeout = -time.Second }},
		{"tunnel timeout in tcp mode", func(m *Model) { m.Backends[0].TunnelTimeout = time.Hour }},
		{"default timeout too long", func(m *Model) { m.Timeouts.Tunnel = 30 * 24 * time.Hour }},
		{"affinity beyond a day", func(m *Model) { m.Backends[0].Affinity = 25 * time.Hour }},
		{"affinity in milliseconds", func(m *Model) { m.Backends[0].Affinity = 1500 * time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleModel()
			tt.mod(&m)
			if _, err := Render(m); !errors.Is(err, ErrInvalidModel) {
				t.Errorf("Render = %v, want ErrInvalidModel", err)
			}
		})
	}
}

func TestReassignKeepsSlots(t *testing.T) {
	a, b, c := netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:80"), netip.MustParseAddrPort("10.0.0.3:80")
	old := []slot{{Used: true, Addr: a}, {Used: true, Addr: b}, {}}
	got, ok := reassign(old, []Server{{Addr: b}, {Addr: c}})
	// The freed slot is the lowest free one, so c reuses s1.
	want := []slot{{Used: true, Addr: c}, {Used: true, Addr: b}, {}}
	if !ok || !cmp.Equal(want, got, cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })) {
		t.Errorf("reassign = %v, %v; want %v", got, ok, want)
	}
	cmds := slotCommands("be", false, old, got)
	wantCmds := []string{"set server be/s1 state maint", "set server be/s1 addr 10.0.0.3 port 80", "set server be/s1 state ready"}
	if d := cmp.Diff(wantCmds, cmds); d != "" {
		t.Errorf("slotCommands (-want +got):\n%s", d)
	}
	if _, ok := reassign(old, []Server{{Addr: a}, {Addr: b}, {Addr: c}, {Addr: netip.MustParseAddrPort("10.0.0.4:80")}}); ok {
		t.Error("reassign fit 4 servers into 3 slots")
	}
}
