package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testVersion is the package version the test builds with (Debian syntax).
const testVersion = "0.0.0~test1"

// TestDeb builds bin/edged and the .deb as `make deb` does, then checks the
// package with dpkg-deb: files, conffiles and dependencies.
func TestDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds edged and a .deb")
	}
	dpkg, err := exec.LookPath("dpkg-deb")
	if err != nil {
		t.Fatalf("dpkg-deb not found (apt-get install -y dpkg): %v", err)
	}
	// nfpm.yaml names ../bin/linux_ARCH/edged, so build it where `make deb` puts it.
	build := exec.Command("go", "build", "-o", "bin/linux_"+runtime.GOARCH+"/edged", "./cmd/edged")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build edged: %v\n%s", err, out)
	}
	t.Setenv("VERSION", testVersion)
	t.Setenv("ARCH", runtime.GOARCH)
	out := t.TempDir()
	if err := run("nfpm.yaml", out); err != nil {
		t.Fatalf("run: %v", err)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one .deb in %s, got %v", out, debs)
	}
	deb := debs[0]

	contents, err := exec.Command(dpkg, "-c", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, contents)
	}
	for _, want := range []string{
		"./usr/bin/edged",
		"./lib/systemd/system/edged.service",
		"./etc/sysctl.d/99-edged.conf",
		"./etc/edged/edged.yaml",
		"./lib/systemd/system/haproxy.service.d/edged.conf",
	} {
		if !hasPath(string(contents), want) {
			t.Errorf("%s lacks %s; contents:\n%s", filepath.Base(deb), want, contents)
		}
	}

	ctl := t.TempDir()
	if out, err := exec.Command(dpkg, "-e", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatalf("no conffiles: %v", err)
	}
	for _, want := range []string{"/etc/edged/edged.yaml", "/etc/sysctl.d/99-edged.conf"} {
		if !strings.Contains("\n"+string(conffiles), "\n"+want+"\n") {
			t.Errorf("conffiles lacks %s:\n%s", want, conffiles)
		}
	}

	for field, want := range map[string]string{
		"Package":      "edged",
		"Version":      testVersion,
		"Architecture": runtime.GOARCH,
		"Depends":      "haproxy (>= 2.6), adduser",
	} {
		got, err := exec.Command(dpkg, "-f", deb, field).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", field, err)
		}
		if g := strings.TrimSpace(string(got)); g != want {
			t.Errorf("%s = %q, want %q", field, g, want)
		}
	}
}

// hasPath reports whether a `dpkg-deb -c` listing has a line ending in p.
func hasPath(listing, p string) bool {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == p {
			return true
		}
	}
	return false
}
