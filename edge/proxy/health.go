package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/goldentooth/edged/edge/health"
)

// HealthProbe checks that HAProxy can serve: edged applied its first model
// (rendered from a caught-up raft state), and the stats socket (served by
// the worker) answers `show info` as HAProxy. A killed or hung worker, or a
// master-worker pair that is gone, fails it; a reload does not (the old
// worker answers until the new one has taken the socket over).
func (p *Part) HealthProbe() health.Probe {
	sock := p.mgr.Paths().Stats
	return health.Probe{Name: "haproxy", Check: func(ctx context.Context) error {
		if !p.Ready() {
			return errors.New("edged has not applied its first complete configuration yet")
		}
		reply, err := sock.Command(ctx, "show info")
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("stats socket %s: %w (%w: HAProxy's worker is not running)", sock.Address, err, health.ErrGone)
		}
		if err != nil {
			return fmt.Errorf("stats socket %s: %w", sock.Address, err)
		}
		if !strings.Contains(reply, "Name: HAProxy") {
			return fmt.Errorf("stats socket %s: `show info` did not answer as HAProxy", sock.Address)
		}
		return nil
	}}
}
