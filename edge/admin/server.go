package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// statusPath is the status endpoint of the admin API (members.go has the
// rest).
const statusPath = "/v1/status"

// socketMode lets the edged group read status and run member operations;
// others get nothing.
const socketMode = 0o660

// StatusFunc returns the current status; it must be cheap and safe to call
// from any goroutine.
type StatusFunc func() Status

// Server serves the admin API on a unix socket.
type Server struct {
	path string
	srv  *http.Server
	ln   net.Listener
}

// Listen creates the socket at path (removing a stale one left by a crash)
// and returns a Server ready to Serve. op serves the member and drain
// endpoints (nil: they answer 501).
func Listen(path string, status StatusFunc, op Operator, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("admin socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+statusPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(status()); err != nil && log != nil {
			log.Debug("admin status write", "err", err)
		}
	})
	handleMembers(mux, op, log)
	return &Server{path: path, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// removeStale deletes a socket file nobody listens on any more.
func removeStale(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another edged is already running", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale admin socket %s: %w", path, err)
	}
	return nil
}

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin socket %s: %w", s.path, err)
	}
	return nil
}

// Shutdown stops the server and removes the socket.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

// Fetch asks the daemon behind the socket at path for its status.
func Fetch(ctx context.Context, path string) (Status, error) {
	client := socketClient(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://edged"+statusPath, nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("ask edged at %s (is it running? is node.adminSocket right?): %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("edged at %s answered %s", path, resp.Status)
	}
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return Status{}, fmt.Errorf("decode status from %s: %w", path, err)
	}
	return s, nil
}

// socketClient is an HTTP client that reaches the daemon over the unix
// socket at path.
func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// Running reports whether a daemon answers on the socket at path (`edged
// recover` refuses to run beside one).
func Running(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
