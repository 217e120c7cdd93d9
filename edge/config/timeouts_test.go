package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/haproxy"
)

// TestTimeouts: haproxy.timeouts defaults to haproxy.DefaultTimeouts, a
// partial block keeps the defaults of the keys it leaves out, and a value
// outside the renderer's bounds is refused with its line.
func TestTimeouts(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Timeouts
		err  string
	}{
		{name: "defaults", yaml: minimal, want: Timeouts{Connect: 5 * time.Second, Client: 24 * time.Hour, Server: 24 * time.Hour, Tunnel: 24 * time.Hour}},
		{name: "partial", yaml: "haproxy:\n  timeouts:\n    client: 2h\n" + minimal,
			want: Timeouts{Connect: 5 * time.Second, Client: 2 * time.Hour, Server: 24 * time.Hour, Tunnel: 24 * time.Hour}},
		{name: "too short", yaml: "haproxy:\n  timeouts:\n    server: 10ms\n" + minimal, err: "edged.yaml:3: haproxy.timeouts.server: 10ms: want a duration from 1s to 168h0m0s"},
		{name: "negative", yaml: "haproxy:\n  timeouts:\n    tunnel: -1s\n" + minimal, err: "edged.yaml:3: haproxy.timeouts.tunnel: -1s"},
		{name: "connect too long", yaml: "haproxy:\n  timeouts:\n    connect: 2m\n" + minimal, err: "edged.yaml:3: haproxy.timeouts.connect: 2m0s: want a duration from 100ms to 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"edged.yaml": tt.yaml})
			cfg, err := Load(filepath.Join(dir, "edged.yaml"))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, cfg.HAProxy.Timeouts); d != "" {
				t.Errorf("timeouts (-want +got):\n%s", d)
			}
			if err := cfg.HAProxy.Timeouts.Timeouts().Validate(); err != nil {
				t.Errorf("the renderer refuses the loaded timeouts: %v", err)
			}
		})
	}
	if d := haproxy.DefaultTimeouts; d.Client != 24*time.Hour {
		t.Errorf("default client timeout %v: the docs say 24h", d.Client)
	}
}
