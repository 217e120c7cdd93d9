package haproxy

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderExporterBehindStatsAuth: with stats credentials, the Prometheus
// exporter (every backend and server of every Service) asks for them too.
func TestRenderExporterBehindStatsAuth(t *testing.T) {
	st := &Stats{Bind: netip.MustParseAddrPort("127.0.0.1:8404"), URI: "/stats", User: "ops", Password: "s3cret"}
	st.Prometheus = st.Bind
	out, err := Render(Model{Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	auth := strings.Index(text, "http-request auth realm edged if { path /metrics } !{ http_auth("+statsUsers+") }")
	use := strings.Index(text, "http-request use-service prometheus-exporter")
	if auth < 0 || use < 0 || auth > use {
		t.Fatalf("exporter not behind auth (auth at %d, use-service at %d):\n%s", auth, use, text)
	}
	if !strings.Contains(text, "userlist "+statsUsers+"\n  user ops insecure-password s3cret") {
		t.Fatalf("no userlist with the stats credentials:\n%s", text)
	}
	p := Paths{Binary: mustHAProxyBin(t), Config: filepath.Join(t.TempDir(), "edged.cfg")}
	if err := p.WriteChecked(context.Background(), out); err != nil {
		t.Fatalf("haproxy -c refused the stats section: %v", err)
	}
	st.User, st.Password = "", ""
	out, err = Render(Model{Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "userlist") || !strings.Contains(string(out), "use-service prometheus-exporter") {
		t.Fatalf("without credentials: want the exporter without a userlist:\n%s", out)
	}
}

// TestRenderExporterOwnBind: haproxy.prometheus.bind apart from the stats
// page gets a frontend of its own (with the same credentials), and alone,
// without a stats page, too.
func TestRenderExporterOwnBind(t *testing.T) {
	st := &Stats{Bind: netip.MustParseAddrPort("127.0.0.1:8404"), URI: "/stats", User: "ops", Password: "s3cret",
		Prometheus: netip.MustParseAddrPort("127.0.0.1:8405")}
	for _, page := range []bool{true, false} {
		if !page {
			st.Bind = netip.AddrPort{}
		}
		out, err := Render(Model{Stats: st})
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		fe := strings.Index(text, "frontend "+exporterFrontend)
		if fe < 0 || !strings.Contains(text[fe:], "bind 127.0.0.1:8405 name prometheus") ||
			!strings.Contains(text[fe:], "http_auth("+statsUsers+")") || strings.Contains(text, "frontend "+statsFrontend) != page {
			t.Fatalf("stats page %v: want the exporter on its own frontend behind auth:\n%s", page, text)
		}
		p := Paths{Binary: mustHAProxyBin(t), Config: filepath.Join(t.TempDir(), "edged.cfg")}
		if err := p.WriteChecked(context.Background(), out); err != nil {
			t.Fatalf("haproxy -c refused: %v", err)
		}
	}
}
