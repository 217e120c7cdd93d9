package config

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckHost points the checks at sockets and directories in a temp dir:
// a listening socket passes, a missing one and an unwritable directory are
// reported, each with a fix.
func TestCheckHost(t *testing.T) {
	old := socketSettle
	socketSettle = 0 // the missing socket is reported at once (TestCheckSocketWaitsOutAReload tests the wait)
	t.Cleanup(func() { socketSettle = old })
	dir := t.TempDir()
	master := filepath.Join(dir, "master.sock")
	ln, err := net.Listen("unix", master)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	own := filepath.Join(dir, "edged")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	operator := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(operator, []byte("global\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{HAProxy: HAProxy{
		MasterSocket: master, StatsSocket: filepath.Join(dir, "missing.sock"),
		ConfigFile: filepath.Join(own, "edged.cfg"), CertDir: filepath.Join(own, "certs"),
		OperatorFile: operator, Binary: "true", // `haproxy -c` is tested by the install test
	}}
	var got []string
	for _, p := range c.CheckHost(context.Background()) {
		if strings.HasPrefix(p.What, "sysctl") {
			continue // the machine's own setting
		}
		if p.Fix == "" {
			t.Errorf("%s: no fix", p.What)
		}
		got = append(got, p.What)
	}
	if len(got) != 1 || !strings.Contains(got[0], "stats socket") {
		t.Errorf("problems = %q, want only the missing stats socket", got)
	}
}
