package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestListenersDefaultToOwnAddress: VIPs live on lo, so a listener on every
// address answers on every VIP; raft and the metrics default to this host's
// own address instead, and only an explicit wildcard (or a host that has no
// known address) listens everywhere, reported by Wildcards.
func TestListenersDefaultToOwnAddress(t *testing.T) {
	peers := "  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}, {id: edge2, address: \"10.0.0.2:7951\"}]\n"
	for _, tc := range []struct {
		name, yaml    string
		bind, metrics string
		wildcards     []Listener
	}{
		{"own peer entry", "node: {name: edge2}\nraft:\n" + peers, "10.0.0.2:7951", "10.0.0.2:7472", nil},
		{"advertiseAddress without peers", "node: {name: edge1}\nraft:\n  advertiseAddress: \"[fd00::5]:7950\"\n", "[fd00::5]:7950", "[fd00::5]:7472", nil},
		{"explicit bind host", "node: {name: edge2}\nraft:\n  bindAddress: 10.0.0.9:7950\n" + peers, "10.0.0.9:7950", "10.0.0.9:7472", nil},
		{"explicit metrics", "node: {name: edge2}\nraft:\n" + peers + "metrics: {address: \"127.0.0.1:9000\"}\n", "10.0.0.2:7951", "127.0.0.1:9000", nil},
		{"no own address", "node: {name: solo}\n", DefaultRaftBind, DefaultMetricsAddress,
			[]Listener{{"raft.bindAddress", DefaultRaftBind}, {"metrics.address", DefaultMetricsAddress}}},
		{"explicit wildcards", "node: {name: edge2}\nraft:\n  bindAddress: \"[::]:7950\"\n" + peers + "metrics: {address: \"0.0.0.0:7472\"}\n", "[::]:7950", "0.0.0.0:7472",
			[]Listener{{"raft.bindAddress", "[::]:7950"}, {"metrics.address", "0.0.0.0:7472"}}},
		{"wildcard bind, metrics follow it", "node: {name: edge2}\nraft:\n  bindAddress: 0.0.0.0:7950\n" + peers, "0.0.0.0:7950", DefaultMetricsAddress,
			[]Listener{{"raft.bindAddress", "0.0.0.0:7950"}, {"metrics.address", DefaultMetricsAddress}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"edged.yaml": tc.yaml + minimal})
			cfg, err := Load(filepath.Join(dir, "edged.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.bind, tc.metrics}, []string{cfg.Raft.BindAddress, cfg.Metrics.Address}); diff != "" {
				t.Errorf("bind, metrics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wildcards, cfg.Wildcards()); diff != "" {
				t.Errorf("Wildcards (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": "log: {level: debug}\n" + minimal, "bad.yaml": "log:\n  level: loud\n" + minimal})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Log.SlogLevel().String(); got != "DEBUG" {
		t.Errorf("log level = %s, want DEBUG", got)
	}
	_, err = Load(filepath.Join(dir, "bad.yaml"))
	if want := filepath.Join(dir, "bad.yaml") + ":2: log.level"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load(bad) = %v, want an error at %s", err, want)
	}
}
