// Package metricsrv serves Prometheus metrics, /healthz and /readyz on the
// configured metrics address, over plain HTTP or, with metrics.tls, HTTPS
// (optionally only to clients with a certificate from a given CA). /healthz answers while the process runs its
// main loop; /readyz only once raft has a leader and the informers synced,
// the same condition that sends READY=1 to systemd. With EDGED_PPROF=1 in
// the environment it also serves Go's profiles under /debug/pprof/ (off by
// default: profiles expose internals and cost CPU while taken).
package metricsrv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// EnvPprof names the environment variable that, set to 1, adds Go's
// profiling endpoints (/debug/pprof/) to the metrics server.
const EnvPprof = "EDGED_PPROF"

// Check reports nil when healthy, or why not.
type Check func() error

// Server is the metrics and health HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and returns a Server for gatherer's metrics: plain
// HTTP, or HTTPS when files names a certificate (and, with a client CA,
// only for clients presenting a certificate it signed; /healthz and
// /readyz too).
func Listen(addr string, files TLSFiles, gatherer prometheus.Gatherer, healthy, ready Check) (*Server, error) {
	var tc *tls.Config
	if files.Enabled() {
		var err error
		if tc, err = files.tlsConfig(); err != nil {
			return nil, fmt.Errorf("metrics TLS: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", probe(healthy))
	mux.HandleFunc("/readyz", probe(ready))
	if os.Getenv(EnvPprof) == "1" {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

func probe(check Check) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if check != nil {
			if err := check(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
