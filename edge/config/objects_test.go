package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithObjects(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": minimal})
	base, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name, addr string) Object {
		return Object{Source: "IPAddressPool metallb-system/" + name, Data: []byte(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ` + name + `, namespace: metallb-system, labels: {tier: crd}}
spec:
  addresses: ["` + addr + `"]
  autoAssign: false
`)}
	}
	advert := Object{Source: "L2Advertisement metallb-system/l2", Data: []byte(`{"apiVersion":"metallb.io/v1beta1","kind":"L2Advertisement",
"metadata":{"name":"l2"},"spec":{"ipAddressPoolSelectors":[{"matchLabels":{"tier":"crd"}}],"interfaces":["eth0"]}}`)}

	t.Run("merged after the file", func(t *testing.T) {
		got, err := base.WithObjects([]Object{pool("crd", "192.168.60.0/30"), advert})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got.LBPools {
			names = append(names, p.Name)
		}
		if diff := cmp.Diff([]string{"primary", "crd"}, names); diff != "" {
			t.Errorf("pools (-want +got):\n%s", diff)
		}
		if got.LBPools[1].AutoAssign || got.LBPools[1].Ranges[0].String() != "192.168.60.0 - 192.168.60.3" {
			t.Errorf("crd pool converted to %+v", got.LBPools[1])
		}
		if ads := got.AdvertisementsFor("crd"); len(ads) != 1 || ads[0].Name != "l2" {
			t.Errorf("advertisements for crd pool: %+v", ads)
		}
		if len(base.Pools) != 1 || len(base.LBPools) != 1 || len(base.L2Advertisements) != 0 {
			t.Errorf("base config changed: %d pools", len(base.Pools))
		}
	})

	for _, tc := range []struct {
		name string
		objs []Object
		want string
	}{
		{"name clash with the file", []Object{pool("primary", "192.168.60.0/30")},
			`IPAddressPool metallb-system/primary: metadata.name: pool "primary" is already defined at ` + filepath.Join(dir, "edged.yaml") + `:2`},
		{"name clash between objects", []Object{pool("a", "192.168.60.0/30"), pool("a", "192.168.61.0/30")},
			`IPAddressPool metallb-system/a: metadata.name: pool "a" is already defined at IPAddressPool metallb-system/a`},
		{"bad address", []Object{pool("bad", "10.4.300.1")},
			`IPAddressPool metallb-system/bad: IPAddressPool "bad" spec.addresses[0]:`},
		{"overlap with the file", []Object{pool("over", "10.4.12.0/24")},
			`IPAddressPool metallb-system/over: IPAddressPool "over" spec.addresses[0]:`},
		{"unknown spec key", []Object{{Source: "IPAddressPool metallb-system/x", Data: []byte("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {adresses: [10.9.0.1]}\n")}},
			`IPAddressPool metallb-system/x: IPAddressPool "x" spec.adresses: unknown key "adresses" (did you mean "addresses"?)`},
		{"advert names a missing pool", []Object{{Source: "L2Advertisement metallb-system/y", Data: []byte("apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: y}\nspec: {ipAddressPools: [nope]}\n")}},
			`L2Advertisement metallb-system/y: L2Advertisement "y" spec.ipAddressPools[0]: no pool named "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := base.WithObjects(tc.objs)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n %s\nwant prefix\n %s", err, tc.want)
			}
		})
	}
}

// TestWithObjectsOnBuiltConfig: a Config made in code (no positions) merges
// and reports clashes without panicking.
func TestWithObjectsOnBuiltConfig(t *testing.T) {
	base := &Config{Path: "built", Node: Node{Name: "h"}, Raft: Raft{BindAddress: ":1", LeaseDuration: 1, HeartbeatTimeout: MinHeartbeatTimeout, ElectionTimeout: MinHeartbeatTimeout},
		Kubernetes: Kubernetes{IPMode: "VIP", QPS: 1, Burst: 1}, HAProxy: HAProxy{BackendMode: "endpoints", ServerSlots: 1, CertDir: DefaultCertDir, Stats: Stats{URI: DefaultStatsURI}}, Metrics: Metrics{Address: ":2"},
		Health: Health{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, FailAfter: 1},
		Pools:  []Pool{{Name: "p", Addresses: []string{"10.0.0.0/30"}}}, L2Advertisements: []L2Advertisement{{Name: "all"}}}
	obj := Object{Source: "IPAddressPool ns/p", Data: []byte("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.1.0.0/30]}\n")}
	if _, err := base.WithObjects([]Object{obj}); err == nil || !strings.Contains(err.Error(), `pool "p" is already defined at built (pools[0])`) {
		t.Errorf("clash: %v", err)
	}
	obj.Data = []byte(strings.Replace(string(obj.Data), "{name: p}", "{name: q}", 1))
	got, err := base.WithObjects([]Object{obj})
	if err != nil || len(got.LBPools) != 2 {
		t.Fatalf("merge: %v, %d pools", err, len(got.LBPools))
	}
}

// TestCRDsOnlyNeedsNoFilePools: with kubernetes.metallbCRDs the cluster may
// hold every pool.
func TestCRDsOnlyNeedsNoFilePools(t *testing.T) {
	dir := writeFiles(t, map[string]string{"edged.yaml": "kubernetes: {metallbCRDs: true}\n"})
	cfg, err := Load(filepath.Join(dir, "edged.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kubernetes.MetallbNamespace != DefaultMetallbNamespace || len(cfg.LBPools) != 0 {
		t.Errorf("namespace %q, %d pools", cfg.Kubernetes.MetallbNamespace, len(cfg.LBPools))
	}
	dir = writeFiles(t, map[string]string{"edged.yaml": "kubernetes: {metallbCRDs: false}\n"})
	if _, err := Load(filepath.Join(dir, "edged.yaml")); err == nil || !strings.Contains(err.Error(), "metallbCRDs") {
		t.Errorf("no pools without CRDs: %v, want an error naming metallbCRDs", err)
	}
}
