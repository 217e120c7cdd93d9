package metricsrv

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "edged_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var ready atomic.Bool
	srv, err := Listen("127.0.0.1:0", TLSFiles{}, reg, nil, func() error {
		if !ready.Load() {
			return errors.New("raft has no leader yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	base := "http://" + srv.Addr()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "edged_test_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "no leader") {
		t.Errorf("/readyz before ready = %d %q, want 503 with the reason", code, body)
	}
	ready.Store(true)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after ready = %d, want 200", code)
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		if on {
			t.Setenv(EnvPprof, "1")
		}
		srv, err := Listen("127.0.0.1:0", TLSFiles{}, prometheus.NewRegistry(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve()
		code, _ := get(t, "http://"+srv.Addr()+"/debug/pprof/heap")
		srv.Shutdown(context.Background())
		if want := map[bool]int{false: 404, true: 200}[on]; code != want {
			t.Errorf("%s=%v: /debug/pprof/heap = %d, want %d", EnvPprof, on, code, want)
		}
	}
}
