package haproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrFDLimit reports a config that HAProxy could not start with under its
// file descriptor limit. `haproxy -c` does not see this: only a starting
// worker does ("Cannot raise FD limit to N"), so edged checks it before a
// reload and keeps the old config serving.
var ErrFDLimit = errors.New("haproxy file descriptor limit too low for the config")

// fdHeadroom covers what HAProxy reserves besides listeners and health
// checks: its floor of 100 connections (two descriptors each), pollers,
// sockets and a modest operator file. HAProxy 2.6 asked for 239 more than
// listeners plus checked servers with a config of nothing else.
const fdHeadroom = 512

// FDNeed estimates the file descriptors HAProxy needs at least to start
// model: one per listener and one per server slot with health checks (every
// slot reserves one, in maintenance or not), plus headroom.
func FDNeed(m Model) int {
	n := fdHeadroom + len(m.Frontends)
	if m.Stats != nil {
		n += 2 // stats page and Prometheus exporter listeners
	}
	for _, b := range m.Backends {
		if b.Check.Kind != CheckNone {
			n += slotsFor(b)
		}
	}
	return n
}

// hardFDLimit reads the hard "Max open files" limit of process pid from
// /proc (HAProxy raises its soft limit up to the hard one by itself).
func hardFDLimit(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseHardFDLimit(f)
}

// parseHardFDLimit parses the "Max open files" line of /proc/PID/limits;
// "unlimited" is returned as -1.
func parseHardFDLimit(f io.Reader) (int, error) {
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		fields := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(fields) < 2 {
			break
		}
		if fields[1] == "unlimited" {
			return -1, nil
		}
		return strconv.Atoi(fields[1])
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(`no "Max open files" line`)
}

// checkFDLimit returns an ErrFDLimit error when model needs more file
// descriptors than the HAProxy master (pid) may open. A limit that cannot
// be read (another PID namespace, hidden /proc) is not an error: the
// reload's own confirmation still catches a worker that failed to start.
func checkFDLimit(m Model, pid int) error {
	if pid <= 0 {
		return nil
	}
	limit, err := hardFDLimit(pid)
	if err != nil || limit < 0 {
		return nil
	}
	if need := FDNeed(m); need > limit {
		return fmt.Errorf("about %d file descriptors needed (%d frontends, health-checked server slots, headroom) but the HAProxy master (pid %d) may open %d: raise LimitNOFILE of haproxy.service, or lower haproxy.serverSlots: %w",
			need, len(m.Frontends), pid, limit, ErrFDLimit)
	}
	return nil
}
