// Package notify tells systemd about edged's life cycle through sd_notify
// (coreos/go-systemd): READY=1 once the daemon can serve, WATCHDOG=1 pings
// while its main loop is alive, STOPPING=1 when shutdown begins. Outside
// systemd (no NOTIFY_SOCKET) every call is a cheap no-op.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to the service manager.
type Notifier struct {
	log *slog.Logger
}

// New returns a Notifier that logs failures to log.
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{log: log}
}

// Ready reports READY=1 with a human-readable STATUS line.
func (n *Notifier) Ready(status string) error {
	return n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Status sets the STATUS line `systemctl status` shows, e.g. why edged is
// not ready yet.
func (n *Notifier) Status(status string) error {
	return n.send("STATUS=" + status)
}

// Stopping reports STOPPING=1: the graceful shutdown has begun.
func (n *Notifier) Stopping() error {
	return n.send(daemon.SdNotifyStopping)
}

func (n *Notifier) send(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// Alive reports whether the main loop is healthy; the watchdog pings only
// while it returns nil, so a wedged loop makes systemd restart edged.
type Alive func() error

// Watchdog pings WATCHDOG=1 at half the interval systemd asked for
// (WATCHDOG_USEC, sd_watchdog_enabled(3) recommends pinging at least that
// often) until ctx ends. It returns at once when no watchdog is configured.
func (n *Notifier) Watchdog(ctx context.Context, alive Alive) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("read watchdog settings: %w", err)
	}
	if interval == 0 {
		return nil
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if alive != nil {
				if err := alive(); err != nil {
					n.log.Error("watchdog ping withheld: systemd restarts edged unless this recovers", "err", err)
					continue
				}
			}
			if err := n.send(daemon.SdNotifyWatchdog); err != nil {
				n.log.Warn("watchdog ping failed", "err", err)
			}
		}
	}
}
