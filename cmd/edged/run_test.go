package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/goldentooth/edged/test/wait"
)

// helperEnv makes TestHelperEdged run the edged command line from its
// arguments after "--", as a child process of a test.
const helperEnv = "EDGED_TEST_HELPER"

// TestHelperEdged is not a test: it is `edged` for tests that need a real
// process (signals, exit). It brings lo up first, because those tests start
// it in a network namespace of its own.
func TestHelperEdged(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as a child process of another test")
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bring lo up: %v\n", err)
		os.Exit(3)
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(execute(args, os.Stdout, os.Stderr))
}

// lockedBuffer is a child's output, written by exec's copier goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunSurvivesSIGHUP: SIGHUP makes a running `edged run` read its config
// again (a good file is applied, a bad one logged and refused) and never
// ends it: the process keeps answering on its admin socket, and still
// shuts down cleanly on SIGTERM afterwards.
func TestRunSurvivesSIGHUP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: edged run announces on every interface, so it runs in a network namespace of its own")
	}
	dir, err := os.MkdirTemp("", "edr") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// No apiserver answers: the Kubernetes part keeps retrying, which is
	// all this test needs of it.
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: edged, user: {token: t}}]
contexts: [{name: none, context: {cluster: none, user: edged}}]
current-context: none
`
	cfg := func(pools string) string {
		return fmt.Sprintf(`node: {name: edge1, dataDir: %[1]s/data, adminSocket: %[1]s/admin.sock}
raft:
  insecurePlaintext: true
  peers: [{id: edge1, address: "127.0.0.1:7950"}]
kubernetes: {kubeconfig: %[1]s/kubeconfig}
pools:
%[2]shaproxy:
  configFile: %[1]s/haproxy/edged.cfg
  operatorFile: %[1]s/haproxy/haproxy.cfg
  masterSocket: %[1]s/haproxy/master.sock
  statsSocket: %[1]s/haproxy/admin.sock
  certDir: %[1]s/haproxy/certs
`, dir, pools)
	}
	primary := "  - {name: primary, addresses: [10.4.11.0 - 10.4.15.254]}\n"
	path := filepath.Join(dir, "edged.yaml")
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kubeconfig", kubeconfig)
	write("haproxy/haproxy.cfg", "global\n")
	write("edged.yaml", cfg(primary))

	var out lockedBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEdged$", "--", "run", "--config", path)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	alive := func() {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("edged run exited (%v); output:\n%s", err, out.String())
		default:
		}
	}
	status := func() (bool, string) {
		var sout, serr bytes.Buffer
		code := execute([]string{"status", "--socket", filepath.Join(dir, "admin.sock")}, &sout, &serr)
		return code == 0, serr.String()
	}
	wait.For(t, 20*time.Second, "edged status to answer", func() (bool, string) { alive(); return status() })

	write("edged.yaml", cfg(primary+"  - {name: extra, addresses: [10.5.0.0/24]}\n"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 10*time.Second, "\"config reloaded\" in the log", func() bool {
		alive()
		return strings.Contains(out.String(), "config reloaded")
	})
	write("edged.yaml", cfg("  - {name: bad, addresses: [10.5.0.9 - 10.5.0.1]}\n"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.ForBool(t, 10*time.Second, "the refused reload in the log", func() bool {
		alive()
		return strings.Contains(out.String(), "config reload refused")
	})
	if ok, msg := status(); !ok {
		t.Fatalf("edged status after SIGHUP: %s", msg)
	}
	alive()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("edged run after SIGTERM: %v; output:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("edged run did not stop within 30s of SIGTERM; output:\n%s", out.String())
	}
}
