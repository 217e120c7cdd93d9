package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReferenceConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := execute([]string{"validate", "--config", "../../configs/edged.yaml"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	for _, want := range []string{"ok, 1 pools, 1 static VIPs", "primary", "1,279", "primary (eth0)", "static VIP stats (eth0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValidateAvoidBuggyIPs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edged.yaml")
	os.WriteFile(path, []byte("pools:\n  - name: primary\n    addresses: [10.4.11.0 - 10.4.15.254]\n    avoidBuggyIPs: true\n"), 0o644)
	var out, errb bytes.Buffer
	if code := execute([]string{"validate", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "1,270") {
		t.Errorf("want 1,270 addresses with avoidBuggyIPs:\n%s", out.String())
	}
}

func TestValidateBadConfigExitsNonZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edged.yaml")
	os.WriteFile(path, []byte("pools:\n  - name: a\n    addresses: [10.0.0.9 - 10.0.0.1]\n"), 0o644)
	var out, errb bytes.Buffer
	code := execute([]string{"validate", "--config", path}, &out, &errb)
	if code == 0 {
		t.Fatal("exit 0 for a reversed range")
	}
	if want := path + ":3: pools[0].addresses[0]"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q lacks %q", errb.String(), want)
	}
}

// TestValidateRefusesWhatRunRefuses: validate and run read the config
// through the same checks, so a value every HAProxy render would refuse
// fails both, with the same file:line:field error, before run touches
// anything.
func TestValidateRefusesWhatRunRefuses(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"stats password", "haproxy:\n  stats:\n    bind: 127.0.0.1:8404\n    user: admin\n    password: two words\n", ":5: haproxy.stats.password"},
		{"stats bind", "haproxy:\n  stats:\n    bind: :8404\n", ":3: haproxy.stats.bind"},
		{"certDir", "haproxy:\n  certDir: relative/certs\n", ":2: haproxy.certDir"},
		{"node not a peer", "node: {name: edge9}\nraft:\n  insecurePlaintext: true\n  peers: [{id: edge1, address: \"10.0.0.1:7950\"}]\n", ":1: node.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edged.yaml")
			pools := "pools:\n  - name: primary\n    addresses: [10.4.11.0 - 10.4.15.254]\n"
			if err := os.WriteFile(path, []byte(tc.yaml+pools), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"validate", "run"} {
				var out, errb bytes.Buffer
				if code := execute([]string{cmd, "--config", path}, &out, &errb); code != 2 {
					t.Errorf("%s: exit %d, want 2; stderr %q", cmd, code, errb.String())
				}
				if want := path + tc.want; !strings.Contains(errb.String(), want) {
					t.Errorf("%s: stderr %q lacks %q", cmd, errb.String(), want)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := execute([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "edged ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := execute([]string{"frobnicate"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
