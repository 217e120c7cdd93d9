package kube

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goldentooth/edged/edge/config"
)

// TestPartReloadSwapsPools: after Reload the part, as the appliance's pool
// source, supplies the new file's pools and advertisements at once.
func TestPartReloadSwapsPools(t *testing.T) {
	load := func(pools string) *config.Config {
		t.Helper()
		path := filepath.Join(t.TempDir(), "edged.yaml")
		if err := os.WriteFile(path, []byte("pools:\n"+pools), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	k := NewPart(load("  - {name: a, addresses: [10.0.0.0/30]}\n"), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	names := func() []string {
		pools, _, ok := k.Pools()
		if !ok {
			t.Fatal("Pools not known without MetalLB's objects")
		}
		var out []string
		for _, p := range pools {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("pools before Reload = %v, want [a]", got)
	}
	next := load("  - {name: a, addresses: [10.0.0.0/30]}\n  - {name: b, addresses: [10.0.1.0/30]}\n")
	if err := k.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("pools after Reload = %v, want [a b]", got)
	}
	if k.PoolConfig() != next {
		t.Error("PoolConfig after Reload is not the reloaded config")
	}
}
