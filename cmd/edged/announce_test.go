package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/config"
)

func TestLeaseScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edged.yaml")
	yaml := `node: {name: edge1}
announce: {interfaces: [eth9]}
pools:
  - {name: a, addresses: [10.0.1.0/24]}
  - {name: b, addresses: [10.0.2.0/24]}
  - {name: c, addresses: [10.0.3.0/24]}
  - {name: d, addresses: [10.0.4.0/24]}
  - {name: e, addresses: ["fd00:1::/120"]}
l2Advertisements:
  - {name: a1, ipAddressPools: [a], interfaces: [eth0]}
  - {name: a2, ipAddressPools: [a], interfaces: [eth1]}
  - {name: b1, ipAddressPools: [b]}
  - {name: c1, ipAddressPools: [c], interfaces: [eth0], nodes: [edge2]}
  - {name: e1, ipAddressPools: [e], interfaces: [eth2]}
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	scope := leaseScope(cfg)
	tests := []struct {
		name   string
		ip     string
		ifaces []string
		ok     bool
	}{
		{"union of two advertisements", "10.0.1.5", []string{"eth0", "eth1"}, true},
		{"advertisement without interfaces uses announce.interfaces", "10.0.2.5", []string{"eth9"}, true},
		{"advertisement for another node", "10.0.3.5", nil, false},
		{"pool without advertisement", "10.0.4.5", nil, false},
		{"outside every pool", "10.0.9.5", nil, false},
		{"IPv6 pool", "fd00:1::5", []string{"eth2"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ifaces, ok := scope(netip.MustParseAddr(tc.ip))
			if diff := cmp.Diff([2]any{tc.ifaces, tc.ok}, [2]any{ifaces, ok}); diff != "" {
				t.Errorf("leaseScope(%s) (-want +got):\n%s", tc.ip, diff)
			}
		})
	}
	got, err := announceInterfaces(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eth0", "eth1", "eth9", "eth2"}, got); diff != "" {
		t.Errorf("announceInterfaces (-want +got):\n%s", diff)
	}
	// With MetalLB's objects as the source, edged serves announce.interfaces
	// and adds what the advertisements in force name for this host (c1 is
	// edge2's: its eth0 comes from a1 here).
	if diff := cmp.Diff([]string{"eth9", "eth0", "eth1", "eth2"}, servedInterfaces([]string{"eth9"}, cfg)); diff != "" {
		t.Errorf("servedInterfaces (-want +got):\n%s", diff)
	}
	cfg.L2Advertisements = cfg.L2Advertisements[3:4] // only edge2's
	if diff := cmp.Diff([]string{"eth9"}, servedInterfaces([]string{"eth9"}, cfg)); diff != "" {
		t.Errorf("servedInterfaces with another node's advertisement (-want +got):\n%s", diff)
	}
}

// TestFollowLinks: serving every interface, edged starts serving one
// created after start and lets a deleted one go, on the next look.
func TestFollowLinks(t *testing.T) {
	var mu sync.Mutex
	running := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	a := announce.NewAnnouncer()
	n := &announcer{a: a, log: slog.New(slog.DiscardHandler)}
	n.ifaces = a.NewInterfaces(ctx, func(ctx context.Context, name string) {
		mu.Lock()
		running[name] = true
		mu.Unlock()
		<-ctx.Done()
		mu.Lock()
		delete(running, name)
		mu.Unlock()
	})
	n.serve([]string{"eth0"})
	links := make(chan []string, 1)
	list := func() ([]string, error) {
		select {
		case l := <-links:
			return l, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); n.followLinks(ctx, time.Millisecond, []string{"bond0"}, list) }()
	t.Cleanup(func() { cancel(); <-done; n.ifaces.Wait() })

	// look hands followLinks one listing and waits until it served want.
	look := func(want []string, sys ...string) {
		t.Helper()
		links <- sys
		deadline := time.Now().Add(5 * time.Second)
		for {
			n.mu.Lock()
			got := n.ifaces.Served()
			n.mu.Unlock()
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the listing %v: served %v, want %v", sys, got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	look([]string{"bond0", "eth0", "eth1"}, "eth0", "eth1") // eth1 appeared; bond0 is named in the config
	look([]string{"bond0", "eth1"}, "eth1")                 // eth0 went away
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		stopped := !running["eth0"] && running["eth1"]
		mu.Unlock()
		if stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("eth0's Run did not stop or eth1's did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
