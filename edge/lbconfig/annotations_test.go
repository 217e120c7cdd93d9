package lbconfig

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/haproxy"
)

func TestParseAnnotations(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    Settings
		wantErr bool
	}{
		{name: "defaults", ann: nil, want: DefaultSettings(false)},
		{name: "foreign keys ignored", ann: map[string]string{"metallb.universe.tf/address-pool": "x"}, want: DefaultSettings(false)},
		{name: "full http", ann: map[string]string{
			AnnMode: "http", AnnCheck: "http", AnnCheckPath: "/healthz", AnnCheckHost: "grafana.example.com",
			AnnCheckInterval: "2s", AnnCheckRise: "2", AnnCheckFall: "3", AnnTLSSecret: "web-tls",
			AnnProxyProtocol: "v2", AnnBalance: "leastconn", AnnBackend: "nodeport",
		}, want: Settings{Mode: haproxy.ModeHTTP, NodePort: true, TLSSecret: "web-tls", ProxyV2: true, Balance: "leastconn",
			Check: haproxy.Check{Kind: haproxy.CheckHTTP, Path: "/healthz", Host: "grafana.example.com", Interval: 2 * time.Second, Rise: 2, Fall: 3}}},
		{name: "path injection", ann: map[string]string{AnnCheck: "http", AnnCheckPath: "/x\n  server evil 1.2.3.4:80"}, wantErr: true},
		{name: "host with space", ann: map[string]string{AnnCheck: "http", AnnCheckHost: "a b"}, wantErr: true},
		{name: "host with quote", ann: map[string]string{AnnCheck: "http", AnnCheckHost: `a"b`}, wantErr: true},
		{name: "path needs http check", ann: map[string]string{AnnCheckPath: "/x"}, wantErr: true},
		{name: "rise out of range", ann: map[string]string{AnnCheckRise: "1000"}, wantErr: true},
		{name: "interval too short", ann: map[string]string{AnnCheckInterval: "1ms"}, wantErr: true},
		{name: "edged's own announcing-node is no setting", ann: map[string]string{AnnAnnouncingNode: "edge2\n  server evil"}, want: DefaultSettings(false)},
		{name: "unknown key", ann: map[string]string{Prefix + "chek": "tcp"}, wantErr: true},
		{name: "bad balance", ann: map[string]string{AnnBalance: "hdr(host)"}, wantErr: true},
		{name: "bad secret", ann: map[string]string{AnnTLSSecret: "../../etc/shadow"}, wantErr: true},
		{name: "connection contract", ann: map[string]string{
			AnnMode: "http", AnnAcceptProxy: "true", AnnTimeoutClient: "2h", AnnTimeoutServer: "90s",
			AnnTimeoutTunnel: "168h", AnnTimeoutConnect: "100ms",
		}, want: Settings{Mode: haproxy.ModeHTTP, Check: haproxy.Check{Kind: haproxy.CheckTCP}, Balance: "roundrobin", AcceptProxy: true,
			Timeouts: haproxy.Timeouts{Connect: 100 * time.Millisecond, Client: 2 * time.Hour, Server: 90 * time.Second, Tunnel: 168 * time.Hour}}},
		{name: "accept-proxy not a bool", ann: map[string]string{AnnAcceptProxy: "yes"}, wantErr: true},
		{name: "client timeout too short", ann: map[string]string{AnnTimeoutClient: "999ms"}, wantErr: true},
		{name: "server timeout beyond a week", ann: map[string]string{AnnTimeoutServer: "169h"}, wantErr: true},
		{name: "zero timeout", ann: map[string]string{AnnTimeoutServer: "0s"}, wantErr: true},
		{name: "connect timeout too long", ann: map[string]string{AnnTimeoutConnect: "61s"}, wantErr: true},
		{name: "timeout not a duration", ann: map[string]string{AnnTimeoutClient: "1d"}, wantErr: true},
		{name: "tunnel timeout needs http", ann: map[string]string{AnnTimeoutTunnel: "1h"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnnotations(tt.ann, false)
			if tt.wantErr {
				if !errors.Is(err, ErrAnnotation) {
					t.Fatalf("err = %v, want ErrAnnotation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ParseAnnotations (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzParseAnnotations checks that accepted values can never carry
// characters that would break out of a HAProxy config line.
func FuzzParseAnnotations(f *testing.F) {
	f.Add("http", "/healthz", "example.com", "2s", "3", "web-tls", "leastconn")
	f.Add("tcp", "/x y", "a\nb", "-1s", "999", "..", "source")
	f.Fuzz(func(t *testing.T, mode, path, host, interval, rise, secret, balance string) {
		s, err := ParseAnnotations(map[string]string{
			AnnMode: mode, AnnCheck: "http", AnnCheckPath: path, AnnCheckHost: host,
			AnnCheckInterval: interval, AnnCheckRise: rise, AnnTLSSecret: secret, AnnBalance: balance,
		}, false)
		if err != nil {
			return
		}
		for _, v := range []string{string(s.Mode), s.Check.Path, s.Check.Host, s.TLSSecret, s.Balance} {
			if strings.ContainsAny(v, " \t\r\n\"'\\#") {
				t.Fatalf("unsafe value accepted: %q", v)
			}
		}
		if s.Check.Rise < 1 || s.Check.Rise > maxRiseFall {
			t.Fatalf("rise %d accepted", s.Check.Rise)
		}
	})
}
