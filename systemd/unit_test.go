package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unitFile is the unit under test, relative to this package.
const unitFile = "edged.service"

// parseUnit returns every Key=Value of the unit as section.Key -> values,
// in order (keys may repeat).
func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not Key=Value: %q", path, line)
			}
			out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnitContract checks the directives operators and edged rely on.
func TestUnitContract(t *testing.T) {
	u := parseUnit(t, unitFile)
	one := func(key string) string {
		v := u[key]
		if len(v) != 1 {
			t.Errorf("%s: want exactly one value, got %q", key, v)
			return ""
		}
		return v[0]
	}
	tests := []struct{ key, want string }{
		{"Service.Type", "notify"},
		{"Service.Restart", "on-failure"},
		{"Service.User", "edged"},
		{"Service.ProtectSystem", "strict"},
		{"Service.NoNewPrivileges", "yes"},
		{"Service.PrivateTmp", "yes"},
	}
	for _, tc := range tests {
		if got := one(tc.key); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
		}
	}
	if w := one("Service.WatchdogSec"); w == "" || w == "0" || w == "infinity" {
		t.Errorf("WatchdogSec = %q, want a finite interval", w)
	}
	caps := strings.Fields(one("Service.AmbientCapabilities"))
	slices.Sort(caps)
	if diff := cmp.Diff([]string{"CAP_NET_ADMIN", "CAP_NET_RAW"}, caps); diff != "" {
		t.Errorf("AmbientCapabilities (-want +got):\n%s", diff)
	}
	var after []string
	for _, v := range u["Unit.After"] {
		after = append(after, strings.Fields(v)...)
	}
	if !slices.Contains(after, "haproxy.service") {
		t.Errorf("After = %q, want it to include haproxy.service", after)
	}
}

// execPath matches the absolute binary paths of Exec*= lines.
var execPath = regexp.MustCompile(`(?m)^(Exec[A-Za-z]*=[-@:+!]*)/usr/bin/edged`)

// TestUnitVerify runs systemd-analyze verify on a copy of the unit whose
// Exec lines point at a freshly built edged, since /usr/bin/edged exists
// only once the package is installed.
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (apt-get install -y systemd): %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "edged")
	build := exec.Command("go", "build", "-o", bin, "github.com/goldentooth/edged/cmd/edged")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build edged: %v\n%s", err, out)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, unitFile)
	rewritten := execPath.ReplaceAllString(string(data), "${1}"+bin)
	if err := os.WriteFile(copyPath, []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", copyPath).CombinedOutput()
	// Warnings about other units (haproxy.service is not installed on a
	// build machine) are not ours; anything naming edged.service is.
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, unitFile) {
			ours = append(ours, line)
		}
	}
	if len(ours) > 0 || (err != nil && len(strings.TrimSpace(string(out))) == 0) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
	t.Logf("systemd-analyze verify output:\n%s", out)
}

// TestUnitSecurity reports systemd-analyze security's exposure score
// offline (no running systemd needed) and fails above 3.0 ("OK" is < 5).
func TestUnitSecurity(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (apt-get install -y systemd): %v", err)
	}
	out, err := exec.Command(sa, "security", "--offline=true", "--threshold=30", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for edged.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	t.Logf("systemd-analyze security exposure: %s", m[1])
}
