package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// lab is a real HAProxy in master-worker mode with an operator file and
// edged's file in a temp dir.
type lab struct {
	paths  Paths
	opAddr string // the operator's own frontend
	vip    netip.Addr
}

// mustHAProxyBin fails (not skips) when haproxy is missing: CI installs it.
func mustHAProxyBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy binary not found (apt-get install -y haproxy): %v", err)
	}
	return bin
}

// freePort returns a currently free TCP port on addr.
func freePort(t testing.TB, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// testVIP returns a loopback address unique to this process, so parallel
// test binaries do not collide.
func testVIP(n byte) netip.Addr {
	pid := os.Getpid()
	return netip.AddrFrom4([4]byte{127, byte(pid>>8) | 1, byte(pid), n})
}

func mustLab(t testing.TB) *lab {
	t.Helper()
	return mustLabWrapped(t)
}

// mustLabWrapped is mustLab with haproxy started through wrapper (e.g.
// prlimit), which must exec it in place.
func mustLabWrapped(t testing.TB, wrapper ...string) *lab {
	t.Helper()
	bin := mustHAProxyBin(t)
	dir := t.TempDir()
	opPort := freePort(t, "127.0.0.1")
	op := filepath.Join(dir, "operator.cfg")
	opCfg := fmt.Sprintf(`global
  stats socket %s/stats.sock mode 600 level admin expose-fd listeners
  stats timeout 10s
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend operator
  bind 127.0.0.1:%d
  http-request return status 200 content-type text/plain string operator
`, dir, opPort)
	if err := os.WriteFile(op, []byte(opCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	edged := filepath.Join(dir, "edged.cfg")
	if err := os.WriteFile(edged, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l := &lab{
		paths: Paths{
			Binary: bin, OperatorConfigs: []string{op}, Config: edged,
			Master: Socket{Network: "unix", Address: dir + "/master.sock", Master: true},
			Stats:  Socket{Network: "unix", Address: dir + "/stats.sock"},
		},
		opAddr: fmt.Sprintf("127.0.0.1:%d", opPort),
		vip:    testVIP(10),
	}
	argv := append(wrapper, bin, "-W", "-S", l.paths.Master.Address, "-f", op, "-f", edged)
	cmd := exec.Command(argv[0], argv[1:]...)
	logf, _ := os.Create(filepath.Join(dir, "haproxy.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	wait.ForBool(t, 10*time.Second, "haproxy master socket", func() bool {
		p, err := l.paths.Proc(context.Background())
		return err == nil && len(p.Workers) == 1
	})
	return l
}

// backendSrv is a small HTTP server answering with its own name.
type backendSrv struct {
	name    string
	addr    netip.AddrPort
	healthy atomic.Bool
}

func mustBackend(t testing.TB, name string) *backendSrv {
	t.Helper()
	return mustBackendAt(t, name, "127.0.0.1:0")
}

// mustBackendAt is mustBackend listening on addr (e.g. "[::1]:0").
func mustBackendAt(t testing.TB, name, addr string) *backendSrv {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &backendSrv{name: name, addr: l.Addr().(*net.TCPAddr).AddrPort()}
	b.healthy.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !b.healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, b.name)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return b
}

var plainClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the body of GET http://addr/path.
func get(addr string) (string, error) {
	resp, err := plainClient.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(body)), err
}

// load sends requests to addr until stop is closed and counts results.
type load struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	done       chan struct{}
}

func startLoad(addr string, stop <-chan struct{}) *load {
	l := &load{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := get(addr); err != nil {
				l.failed.Add(1)
				l.lastErr.Store(err.Error())
			} else {
				l.ok.Add(1)
			}
		}
	}()
	return l
}
