package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
)

// Member endpoints. Writes are authorised by the socket's permissions
// (socketMode): whoever may connect may change the group.
const (
	membersPath  = "/v1/members"
	transferPath = "/v1/leadership/transfer"
	drainPath    = "/v1/drain"
)

// maxBody bounds a request body (a member or a drain request is tiny).
const maxBody = 64 << 10

// Operator is what the member and drain endpoints need from the raft group
// (edge implements it with the raft store). Writes run only on the leader
// and fail elsewhere with a *NotLeaderError; other refusals wrap
// ErrInvalid, ErrNotFound or ErrConflict.
type Operator interface {
	// Members lists the raft configuration as this host sees it.
	Members() ([]Member, error)
	// AddMember adds a voter; RemoveMember removes one.
	AddMember(ctx context.Context, id, address string) error
	RemoveMember(ctx context.Context, id string) error
	// TransferLeadership hands leadership to to (empty: any other voter).
	TransferLeadership(ctx context.Context, to string) error
	// SetDrain sets or clears host's operator drain; empty host: this host.
	SetDrain(ctx context.Context, host string, drain bool) error
}

// Refusals an Operator wraps; the API answers 400, 404 and 409 for them.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// NotLeaderError refuses a write on a host that is not the raft leader and
// names the leader (empty while none is known). The API answers 409 with
// the leader in the body, and Client returns it again.
type NotLeaderError struct {
	Leader  string
	Address string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "not the leader, and no leader is known: is a majority of the edge hosts up? (after losing a majority for good, see `edged recover`)"
	}
	return fmt.Sprintf("not the leader; the leader is %s (%s): run this there", e.Leader, e.Address)
}

// MemberRequest is the body of POST /v1/members.
type MemberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// TransferRequest is the body of POST /v1/leadership/transfer.
type TransferRequest struct {
	To string `json:"to,omitempty"`
}

// DrainRequest is the body of POST /v1/drain; an empty Host is the host
// that serves the socket.
type DrainRequest struct {
	Host  string `json:"host,omitempty"`
	Drain bool   `json:"drain"`
}

// apiError is the body of every refused request.
type apiError struct {
	Error         string `json:"error"`
	NotLeader     bool   `json:"notLeader,omitempty"`
	Leader        string `json:"leader,omitempty"`
	LeaderAddress string `json:"leaderAddress,omitempty"`
}

// handleMembers adds the member endpoints to mux; without an Operator they
// answer 501.
func handleMembers(mux *http.ServeMux, op Operator, log *slog.Logger) {
	write := func(w http.ResponseWriter, r *http.Request, what string, f func(ctx context.Context) error) {
		if op == nil {
			writeError(w, http.StatusNotImplemented, errors.New("this edged serves no member operations"))
			return
		}
		if err := f(r.Context()); err != nil {
			if log != nil {
				log.Info("admin request refused", "op", what, "err", err)
			}
			writeErr(w, err)
			return
		}
		if log != nil {
			log.Info("admin request done", "op", what)
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("GET "+membersPath, func(w http.ResponseWriter, r *http.Request) {
		if op == nil {
			writeError(w, http.StatusNotImplemented, errors.New("this edged serves no member operations"))
			return
		}
		ms, err := op.Members()
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Members []Member `json:"members"`
		}{ms})
	})
	mux.HandleFunc("POST "+membersPath, func(w http.ResponseWriter, r *http.Request) {
		var req MemberRequest
		if !decode(w, r, &req) {
			return
		}
		write(w, r, "members add "+req.ID, func(ctx context.Context) error { return op.AddMember(ctx, req.ID, req.Address) })
	})
	mux.HandleFunc("DELETE "+membersPath+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		write(w, r, "members remove "+id, func(ctx context.Context) error { return op.RemoveMember(ctx, id) })
	})
	mux.HandleFunc("POST "+transferPath, func(w http.ResponseWriter, r *http.Request) {
		var req TransferRequest
		if !decode(w, r, &req) {
			return
		}
		write(w, r, "transfer-leadership "+req.To, func(ctx context.Context) error { return op.TransferLeadership(ctx, req.To) })
	})
	mux.HandleFunc("POST "+drainPath, func(w http.ResponseWriter, r *http.Request) {
		var req DrainRequest
		if !decode(w, r, &req) {
			return
		}
		what := "undrain "
		if req.Drain {
			what = "drain "
		}
		write(w, r, what+req.Host, func(ctx context.Context) error { return op.SetDrain(ctx, req.Host, req.Drain) })
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
		return false
	}
	return true
}

// writeErr answers err with the status its class calls for.
func writeErr(w http.ResponseWriter, err error) {
	var nle *NotLeaderError
	switch {
	case errors.As(err, &nle):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(apiError{Error: nle.Error(), NotLeader: true, Leader: nle.Leader, LeaderAddress: nle.Address})
		return
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Error: err.Error()})
}

// Client calls the admin API of the edged behind a unix socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a Client for the socket at path.
func NewClient(path string) *Client { return &Client{path: path, hc: socketClient(path)} }

// Members lists the raft members as the daemon's host sees them.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	if err := c.do(ctx, http.MethodGet, membersPath, nil, &out); err != nil {
		return nil, err
	}
	return out.Members, nil
}

// AddMember asks the leader to add id at address as a voter.
func (c *Client) AddMember(ctx context.Context, id, address string) error {
	return c.do(ctx, http.MethodPost, membersPath, MemberRequest{ID: id, Address: address}, nil)
}

// RemoveMember asks the leader to remove id.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, membersPath+"/"+url.PathEscape(id), nil, nil)
}

// TransferLeadership asks the leader to hand leadership to to (empty: any).
func (c *Client) TransferLeadership(ctx context.Context, to string) error {
	return c.do(ctx, http.MethodPost, transferPath, TransferRequest{To: to}, nil)
}

// SetDrain asks the leader to drain (or undrain) host; empty: the
// daemon's own host.
func (c *Client) SetDrain(ctx context.Context, host string, drain bool) error {
	return c.do(ctx, http.MethodPost, drainPath, DrainRequest{Host: host, Drain: drain}, nil)
}

// do sends body as JSON and decodes a 2xx answer into out; other answers
// become errors carrying the daemon's message (a *NotLeaderError for a
// write on a follower).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://edged"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask edged at %s (is it running? is node.adminSocket right?): %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e apiError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("edged at %s answered %s: %s", c.path, resp.Status, strings.TrimSpace(string(b)))
		}
		if e.NotLeader {
			return &NotLeaderError{Leader: e.Leader, Address: e.LeaderAddress}
		}
		return errors.New(e.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.path, err)
	}
	return nil
}

// WriteMembers renders members for a terminal. DRAINED says why a host is
// given no IPs: "admin" (edged drain), "host" (it is shutting down or its
// local health check fails).
func WriteMembers(w io.Writer, members []Member) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tVOTER\tLEADER\tHEALTHY\tDRAINED\tIPS")
	for _, m := range members {
		var why []string
		if m.AdminDrained {
			why = append(why, "admin")
		}
		if m.Draining {
			why = append(why, "host")
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%t\t%t\t%s\t%d\n", m.ID, m.Address, m.Voter, m.Leader, m.Healthy,
			orDash(strings.Join(why, ",")), m.Announce)
	}
	return tw.Flush()
}
