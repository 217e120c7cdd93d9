package haproxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrReload reports a reload that HAProxy counted as failed; the previous
// worker keeps serving the previous config.
var ErrReload = errors.New("haproxy reload failed")

// reloadPoll is how often Reload re-reads `show proc` while waiting for the
// new worker; a reload of a small config completes in tens of milliseconds.
const reloadPoll = 5 * time.Millisecond

// ReloadTimeout bounds the wait for a reload to be confirmed; a 1,279
// frontend config loads in well under this on a Raspberry Pi class host.
const ReloadTimeout = 30 * time.Second

// Proc reads `show proc` from the master socket.
func (p Paths) Proc(ctx context.Context) (Proc, error) {
	reply, err := p.Master.Command(ctx, "show proc")
	if err != nil {
		return Proc{}, err
	}
	return ParseProc(reply)
}

// Reload asks the master to reload and waits until `show proc` confirms it:
// the reload counter moved and either a new worker is running (success) or
// the failed counter moved (ErrReload; the old worker still serves).
func (p Paths) Reload(ctx context.Context) (Proc, error) {
	before, err := p.Proc(ctx)
	if err != nil {
		return Proc{}, fmt.Errorf("before reload: %w", err)
	}
	// The master re-executes itself and closes the connection: no reply.
	if _, err := p.Master.Command(ctx, "reload"); err != nil {
		return Proc{}, fmt.Errorf("send reload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ReloadTimeout)
	defer cancel()
	tick := time.NewTicker(reloadPoll)
	defer tick.Stop()
	for {
		now, err := p.Proc(ctx)
		if err == nil && now.Reloads > before.Reloads {
			if now.Failed > before.Failed {
				return now, fmt.Errorf("master counted reload %d as failed: %w", now.Reloads, ErrReload)
			}
			if len(now.Workers) > 0 && !slices.Contains(before.Workers, now.Workers[0]) {
				return now, nil
			}
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("waiting for reload confirmation: %w", errors.Join(ErrReload, ctx.Err()))
		case <-tick.C:
		}
	}
}
