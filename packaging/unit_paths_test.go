package main

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/goreleaser/nfpm/v2"
)

// haproxyRuntimeDir is created at boot by Debian haproxy's tmpfiles.d
// (d /run/haproxy 2775 haproxy haproxy), and haproxy is a dependency.
const haproxyRuntimeDir = "/run/haproxy"

// TestUnitWritablePaths checks that the unit's ReadWritePaths match what the
// package installs. Under ProtectSystem=strict a ReadWritePaths entry that
// does not exist makes the service fail at start (status 226/NAMESPACE),
// and a directory edged writes to that is not listed makes every HAProxy
// apply fail; systemd-analyze verify catches neither.
func TestUnitWritablePaths(t *testing.T) {
	t.Setenv("VERSION", testVersion)
	t.Setenv("ARCH", runtime.GOARCH)
	raw, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nfpm.Parse(strings.NewReader(os.ExpandEnv(string(raw))))
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string]bool{}
	for _, c := range cfg.Contents {
		shipped[c.Destination] = true
		shipped[path.Dir(c.Destination)] = true
	}
	unit := unitValues(t, "../systemd/edged.service")
	exists := map[string]bool{haproxyRuntimeDir: true}
	for _, d := range unit["StateDirectory"] {
		exists["/var/lib/"+d] = true
	}
	var writable []string
	for _, v := range unit["ReadWritePaths"] {
		for _, p := range strings.Fields(v) {
			if strings.HasPrefix(p, "-") { // optional: a missing path is ignored
				writable = append(writable, strings.TrimPrefix(p, "-"))
				continue
			}
			writable = append(writable, p)
			if !exists[p] && !shipped[p] {
				t.Errorf("ReadWritePaths %s: neither shipped by nfpm.yaml nor a StateDirectory nor %s; systemd refuses to start a unit with a missing path", p, haproxyRuntimeDir)
			}
		}
	}
	// Every file edged writes by default must sit under a writable path.
	example, err := os.ReadFile("../configs/edged.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*configFile:\s*(\S+)`).FindSubmatch(example)
	if m == nil {
		t.Fatal("configs/edged.yaml has no haproxy configFile")
	}
	for _, f := range []string{string(m[1]), "/etc/haproxy/edged/certs/x.pem", "/var/lib/edged/raft.db"} {
		ok := false
		for _, w := range writable {
			if strings.HasPrefix(f, strings.TrimSuffix(w, "/")+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("edged writes %s, which is under none of ReadWritePaths %q", f, writable)
		}
	}
}

// unitValues returns the unit's Key=Value pairs by key (all sections).
func unitValues(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[strings.TrimSpace(k)] = append(out[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
