package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RootfsDir caches the debootstrap'd bookworm between runs (~270 MB); it
// is rebuilt when missing. Containers mount it read-only under an overlay.
const RootfsDir = "/var/cache/edged-test/bookworm-rootfs"

// rootfsPackages: systemd and dbus to boot, Debian's haproxy, iproute2 to
// look at addresses, procps for haproxy.service's reload (/bin/kill) and
// ps, adduser for the package's postinst.
var rootfsPackages = []string{"systemd", "dbus", "haproxy", "iproute2", "procps", "adduser"}

// debianMirror is read from the host's apt sources (the machine's own
// mirror), falling back to deb.debian.org.
func debianMirror() string {
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			switch {
			case len(fs) >= 2 && fs[0] == "URIs:" && strings.HasSuffix(strings.TrimSuffix(fs[1], "/"), "/debian"):
				return fs[1]
			case len(fs) >= 3 && fs[0] == "deb" && strings.HasSuffix(strings.TrimSuffix(fs[1], "/"), "/debian"):
				return fs[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// ensureRootfs builds RootfsDir when missing (~2 min on 2 cores).
func ensureRootfs(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(RootfsDir, "usr/sbin/haproxy")); err == nil {
		return
	}
	tmp := RootfsDir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(RootfsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(rootfsPackages, ","),
		"bookworm", tmp, debianMirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		// Like a machine that cannot boot a container: the install
		// cannot be tried here (no mirror), which is not edged's failure.
		t.Skipf("cannot build the container's root filesystem here: debootstrap: %v\n%s", err, tail(string(out), 3000))
	}
	if err := os.Rename(tmp, RootfsDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %v", RootfsDir, time.Since(start).Round(time.Second))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// requireTools fails with what to install when a host tool is missing.
func requireTools(t *testing.T) {
	t.Helper()
	for tool, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "nsenter": "util-linux"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install -y --no-install-recommends %s (systemd-container pinned to the host's systemd version, see ../shared/NSPAWN.md)", tool, pkg)
		}
	}
}

// fmtDur is a duration for logs.
func fmtDur(d time.Duration) string { return fmt.Sprint(d.Round(10 * time.Millisecond)) }
