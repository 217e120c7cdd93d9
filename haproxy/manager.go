package haproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"
)

// DefaultWindow is how long structural changes are coalesced before one
// reload: long enough to absorb a burst of Service creations, short next
// to a human creating a Service. It is edged.yaml's haproxy.coalesce
// default; the Manager stretches it to the last reload's cost when that is
// longer.
const DefaultWindow = 100 * time.Millisecond

// Retry backoff after a failed structural apply: the same model is not
// rendered and reloaded again before the backoff ends (it doubles up to
// maxRetryBackoff while the same model keeps failing); a different model
// is tried at once.
const (
	minRetryBackoff = 5 * time.Second
	maxRetryBackoff = 5 * time.Minute
)

// stateTimeout bounds `show servers state` right after a reload: the new
// worker answers it in chunks while it is still starting its health
// checks, which takes seconds with thousands of server slots.
const stateTimeout = 30 * time.Second

// ErrBackoff reports an apply that was not attempted because the same
// model failed recently; it wraps that failure.
var ErrBackoff = errors.New("same config failed recently, not retried yet")

// DefaultResyncInterval bounds how long endpoints can be stale after an
// external reload brought back the file's (older) server addresses.
const DefaultResyncInterval = 5 * time.Second

// Result describes one apply of a desired model.
type Result struct {
	// Reloaded is true when the apply rendered and reloaded HAProxy.
	Reloaded bool
	// Ops is the number of runtime API commands sent.
	Ops int
	// Err is nil on success; wraps ErrInvalidModel, ErrValidate, ErrReload
	// or ErrRuntime on failure. The previous config keeps serving.
	Err error
	// Refused maps the Owner of sections that HAProxy refused (validation)
	// or could not bind (reload) to what it said about them alone, without
	// host paths: safe to show that owner. The caller leaves those owners
	// out of the next model, so one owner never blocks the others.
	Refused map[string]string
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Paths locates HAProxy's files and sockets.
	Paths Paths
	// Window coalesces structural changes; zero means DefaultWindow.
	Window time.Duration
	// OnResult, when set, is called after every apply (e.g. to raise a
	// Kubernetes Event on failure).
	OnResult func(Result)
	// ResyncInterval is how often Run checks for reloads edged did not
	// make (an operator's `systemctl reload haproxy`) and re-applies runtime
	// state; zero means DefaultResyncInterval.
	ResyncInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Manager drives a running HAProxy towards desired Models: runtime-only
// changes go through the runtime API, structural ones through a validated
// reload. It is safe for concurrent use.
type Manager struct {
	cfg     ManagerConfig
	mu      sync.Mutex // serialises applies and guards live/slots
	live    *Model     // structure loaded in HAProxy, nil before the first apply
	slots   map[string][]slot
	reload  int   // master reload counter after our last confirmed state
	applied Model // last applied normalized model, for Resync

	// failed is the structure of the last model whose structural apply
	// failed, with its error and when it may be tried again; nil after a
	// success. Server addresses do not matter: they change no outcome.
	failed     *Model
	failedErr  error
	retryAt    time.Time
	backoff    time.Duration
	reloadCost time.Duration // wall time of the last render+validate+reload

	pending chan struct{}
	latest  Model
	latMu   sync.Mutex
}

// NewManager returns a Manager; nothing is applied until Apply or Run.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, pending: make(chan struct{}, 1)}
}

// Paths is where this Manager finds HAProxy's files and sockets.
func (m *Manager) Paths() Paths { return m.cfg.Paths }

// Update hands the Manager a new desired model for Run to apply; bursts
// are coalesced and only the latest model is applied.
func (m *Manager) Update(model Model) {
	m.latMu.Lock()
	m.latest = model
	m.latMu.Unlock()
	select {
	case m.pending <- struct{}{}:
	default:
	}
}

// Run applies updates until ctx ends: runtime-only changes at once,
// structural ones after the coalescing window.
func (m *Manager) Run(ctx context.Context) error {
	var timer, retry <-chan time.Time
	resync := time.NewTicker(m.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry:
			retry = nil
			select {
			case m.pending <- struct{}{}:
			default:
			}
		case <-resync.C:
			if err := m.Resync(ctx); err != nil {
				m.report(Result{Err: err})
			}
		case <-m.pending:
			m.latMu.Lock()
			model := m.latest
			m.latMu.Unlock()
			if m.Structural(model) {
				if timer == nil {
					timer = time.After(m.window())
				}
				continue
			}
			m.report(m.Apply(ctx, model))
		case <-timer:
			timer = nil
			m.latMu.Lock()
			model := m.latest
			m.latMu.Unlock()
			m.report(m.Apply(ctx, model))
			if at := m.nextRetry(); !at.IsZero() && retry == nil {
				retry = time.After(time.Until(at))
			}
		}
	}
}

// window is how long structural changes are coalesced: the configured
// window, or the last reload's cost if that was longer, so a burst of
// Service creations against a big config spends at most about half the
// time reloading.
func (m *Manager) window() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.cfg.Window, m.reloadCost)
}

// nextRetry is when a failed model may be tried again (zero: none failed).
func (m *Manager) nextRetry() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		return time.Time{}
	}
	return m.retryAt
}

func (m *Manager) report(r Result) {
	if r.Err != nil {
		m.cfg.Logger.Warn("haproxy apply failed", "err", r.Err, "reloaded", r.Reloaded)
	}
	if m.cfg.OnResult != nil {
		m.cfg.OnResult(r)
	}
}

// Structural reports whether applying model needs a reload.
func (m *Manager) Structural(model Model) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, structural := m.plan(model)
	return structural
}

// plan returns the normalized model with slot counts that never shrink
// below what is loaded (hysteresis), and whether it differs structurally.
func (m *Manager) plan(model Model) (Model, bool) {
	n := model.normalize()
	if m.live == nil {
		return n, true
	}
	liveSlots := map[string]int{}
	for _, b := range m.live.Backends {
		liveSlots[b.Name] = b.Slots
	}
	for i, b := range n.Backends {
		if s, ok := liveSlots[b.Name]; ok && s > b.Slots {
			n.Backends[i].Slots = s
		}
	}
	return n, !reflect.DeepEqual(n.structure(), *m.live)
}

// Apply makes HAProxy serve model now and returns what it did.
func (m *Manager) Apply(ctx context.Context, model Model) (r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() { setApplied(r.Err) }()
	if err := model.Validate(); err != nil {
		failuresTotal.WithLabelValues("render").Inc()
		return Result{Err: err}
	}
	n, structural := m.plan(model)
	if !structural {
		start := time.Now()
		if r, ok := m.applyRuntime(ctx, n); ok {
			observeApply(howRuntime, time.Since(start))
			return r
		}
	}
	if m.failed != nil && time.Now().Before(m.retryAt) && reflect.DeepEqual(n.structure(), *m.failed) {
		return Result{Err: fmt.Errorf("%w (next try %s): %w", ErrBackoff, m.retryAt.Format(time.TimeOnly), m.failedErr)}
	}
	start := time.Now()
	r, loaded := m.applyReload(ctx, n)
	m.reloadCost = time.Since(start)
	observeApply(howReload, m.reloadCost)
	m.noteFailure(n, loaded, r.Err)
	return r
}

// noteFailure records a structural apply's outcome for the retry backoff:
// a failed reload or validation of n is not repeated before the backoff
// ends; runtime errors after a good reload (loaded) do not count.
func (m *Manager) noteFailure(n Model, loaded bool, err error) {
	if err == nil || loaded {
		m.failed, m.failedErr, m.backoff = nil, nil, 0
		return
	}
	s := n.structure()
	if m.failed != nil && reflect.DeepEqual(s, *m.failed) {
		m.backoff = min(2*m.backoff, maxRetryBackoff)
	} else {
		m.backoff = minRetryBackoff
	}
	m.failed, m.failedErr, m.retryAt = &s, err, time.Now().Add(m.backoff)
}

// applyRuntime moves endpoints through the runtime API. ok is false when
// the servers no longer fit the slots or an external reload was detected,
// so the caller must reload instead.
func (m *Manager) applyRuntime(ctx context.Context, n Model) (Result, bool) {
	next := make(map[string][]slot, len(n.Backends))
	var cmds []string
	for _, b := range n.Backends {
		s, ok := reassign(m.slots[b.Name], b.Servers)
		if !ok {
			return Result{}, false
		}
		next[b.Name] = s
		cmds = append(cmds, slotCommands(b.Name, b.Check.Kind != CheckNone, m.slots[b.Name], s)...)
	}
	r := Result{}
	for _, c := range cmds {
		err := m.cfg.Paths.Stats.Exec(ctx, c)
		runtimeOpsTotal.WithLabelValues(result(err)).Inc()
		r.Ops++
		if err != nil {
			failuresTotal.WithLabelValues("runtime").Inc()
			m.slots = nil // unknown runtime state: the next apply reloads
			m.live = nil
			r.Err = fmt.Errorf("runtime update: %w", err)
			return r, true
		}
	}
	m.slots = next
	m.applied = n
	return r, true
}

// applyReload renders, validates, writes, reloads, confirms and re-applies
// runtime state. On failure the old config keeps serving.
func (m *Manager) applyReload(ctx context.Context, n Model) (Result, bool) {
	if before, err := m.cfg.Paths.Proc(ctx); err == nil {
		if err := checkFDLimit(n, before.MasterPID); err != nil {
			failuresTotal.WithLabelValues("reload").Inc()
			return Result{Err: err}, false
		}
	}
	data, err := renderNormal(n, renderChunk) // Apply validated, plan normalized
	if err != nil {
		failuresTotal.WithLabelValues("render").Inc()
		return Result{Err: err}, false
	}
	previous, prevErr := os.ReadFile(m.cfg.Paths.Config)
	if err := m.cfg.Paths.WriteChecked(ctx, data); err != nil {
		failuresTotal.WithLabelValues("validate").Inc()
		r := Result{Err: err}
		if ve := (*ValidateError)(nil); errors.As(err, &ve) {
			r.Refused = refusals(n, ve)
		}
		return r, false
	}
	proc, err := m.cfg.Paths.Reload(ctx)
	reloadsTotal.WithLabelValues(result(err)).Inc()
	if err != nil {
		failuresTotal.WithLabelValues("reload").Inc()
		// Put the file that the still-serving worker loaded back, so an
		// operator's reload does not pick up the config that failed.
		if prevErr == nil {
			if _, werr := WriteFileAtomic(m.cfg.Paths.Config, previous, 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		return m.reloadFailed(n, err), false
	}
	m.reload = proc.Reloads
	m.applied = n
	s := n.structure()
	m.live = &s
	r := Result{Reloaded: true}
	ops, err := m.reapply(ctx, n)
	r.Ops = ops
	if err != nil {
		failuresTotal.WithLabelValues("runtime").Inc()
		r.Err = err
	}
	return r, true
}

// reloadFailed reports a reload the master refused. A counted failure
// leaves the old worker serving the old structure (live and the slots stay
// true); an unconfirmed one leaves the state unknown, so the next apply
// reloads, and blames no Service. Listeners that explain a counted failure
// name their owners.
func (m *Manager) reloadFailed(n Model, err error) Result {
	r := Result{Reloaded: true, Err: err}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Edged stopped waiting (shutdown, or the confirmation timed
		// out): HAProxy refused nothing that is known, so no Service is
		// blamed.
		m.live, m.slots = nil, nil
		return r
	}
	if listening, lerr := listeningSockets(); lerr == nil {
		r.Refused = bindConflicts(n, m.cfg.Paths.loadedBinds(m.live), listening)
	} else {
		m.cfg.Logger.Debug("cannot read listening sockets to explain the failed reload", "err", lerr)
	}
	return r
}

// reapply reads the new worker's server state and sends only the commands
// needed to reach the desired slots (normally none: the file carries them).
func (m *Manager) reapply(ctx context.Context, n Model) (int, error) {
	stats := m.cfg.Paths.Stats
	stats.Timeout = max(stats.Timeout, stateTimeout)
	reply, err := stats.Command(ctx, "show servers state")
	if err != nil {
		return 0, fmt.Errorf("re-apply: %w", err)
	}
	rows, err := ParseServersState(reply)
	if err != nil {
		return 0, fmt.Errorf("re-apply: %w", err)
	}
	m.slots = make(map[string][]slot, len(n.Backends))
	ops := 0
	var errs []error
	for _, b := range n.Backends {
		want := initialSlots(b)
		for _, c := range slotCommands(b.Name, b.Check.Kind != CheckNone, observedSlots(rows, b.Name, b.Slots), want) {
			err := m.cfg.Paths.Stats.Exec(ctx, c)
			runtimeOpsTotal.WithLabelValues(result(err)).Inc()
			ops++
			errs = append(errs, err)
		}
		m.slots[b.Name] = want
	}
	return ops, errors.Join(errs...)
}

// Resync re-applies runtime state when HAProxy was reloaded by someone
// else since edged's last confirmed reload (a reload restores the file's
// server addresses, losing runtime changes).
func (m *Manager) Resync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live == nil {
		return nil
	}
	proc, err := m.cfg.Paths.Proc(ctx)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	if proc.Reloads == m.reload {
		return nil
	}
	m.cfg.Logger.Info("haproxy reloaded outside edged, re-applying runtime state", "reloads", proc.Reloads)
	m.reload = proc.Reloads
	_, err = m.reapply(ctx, m.applied)
	return err
}

// Invalidate makes the next apply render and reload even if the structure
// did not change; call it after a referenced file (a TLS PEM) changed.
func (m *Manager) Invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = nil
}

// InvalidateCert makes the next apply render and reload if the loaded
// config uses the certificate file path (HAProxy reads certificates only
// at load). A file no loaded frontend uses needs nothing: the frontend that
// will use it is a structural change anyway.
func (m *Manager) InvalidateCert(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live == nil {
		return
	}
	for _, f := range m.live.Frontends {
		if f.CertFile == path {
			m.live = nil
			return
		}
	}
}
