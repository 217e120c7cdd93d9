package haproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrParse reports a socket reply that does not have the expected shape.
var ErrParse = errors.New("cannot parse haproxy reply")

// ServerState is one row of `show servers state`.
type ServerState struct {
	// Backend and Name identify the server.
	Backend, Name string
	// Addr is the server's current address and port.
	Addr netip.AddrPort
	// OpState is srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
	OpState int
	// AdminState is srv_admin_state, a bit field; bit 0x01/0x02/0x04/0x20
	// mean forced/inherited/config maintenance, 0x08 drain.
	AdminState int
}

// Up reports whether the server is running and not in maintenance.
func (s ServerState) Up() bool { return s.OpState == 2 && s.AdminState&adminMaintMask == 0 }

// adminMaintMask is the set of srv_admin_state maintenance bits (HAProxy
// src/server.h SRV_ADMF_FMAINT|IMAINT|CMAINT|RMAINT).
const adminMaintMask = 0x01 | 0x02 | 0x04 | 0x20

// ParseServersState parses `show servers state` (format version 1).
func ParseServersState(reply string) ([]ServerState, error) {
	lines := strings.Split(strings.TrimRight(reply, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "1" {
		return nil, fmt.Errorf("servers state: want format version 1: %w", ErrParse)
	}
	var cols map[string]int
	var out []ServerState
	for i, line := range lines[1:] {
		if strings.HasPrefix(line, "# ") {
			cols = map[string]int{}
			for j, f := range strings.Fields(line[2:]) {
				cols[f] = j
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if cols == nil {
			return nil, fmt.Errorf("servers state line %d before header: %w", i+2, ErrParse)
		}
		s, err := parseServerLine(cols, strings.Fields(line))
		if err != nil {
			return nil, fmt.Errorf("servers state line %d: %w", i+2, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseServerLine(cols map[string]int, f []string) (ServerState, error) {
	get := func(name string) (string, error) {
		j, ok := cols[name]
		if !ok || j >= len(f) {
			return "", fmt.Errorf("field %s missing: %w", name, ErrParse)
		}
		return f[j], nil
	}
	var vals [6]string
	for k, name := range []string{"be_name", "srv_name", "srv_addr", "srv_port", "srv_op_state", "srv_admin_state"} {
		v, err := get(name)
		if err != nil {
			return ServerState{}, err
		}
		vals[k] = v
	}
	addr, err := netip.ParseAddr(vals[2])
	if err != nil {
		return ServerState{}, fmt.Errorf("srv_addr %q: %w", vals[2], ErrParse)
	}
	port, err1 := strconv.ParseUint(vals[3], 10, 16)
	op, err2 := strconv.Atoi(vals[4])
	adm, err3 := strconv.Atoi(vals[5])
	if err := errors.Join(err1, err2, err3); err != nil {
		return ServerState{}, fmt.Errorf("numeric field: %v: %w", err, ErrParse)
	}
	return ServerState{Backend: vals[0], Name: vals[1], Addr: netip.AddrPortFrom(addr, uint16(port)), OpState: op, AdminState: adm}, nil
}

// Proc is the master's view of its processes from `show proc`.
type Proc struct {
	// MasterPID is the master process id.
	MasterPID int
	// Reloads counts reload attempts since the master started.
	Reloads int
	// Failed counts reloads that failed (the old worker kept serving).
	Failed int
	// Workers are the current workers' PIDs.
	Workers []int
	// OldWorkers are PIDs of workers still finishing old connections.
	OldWorkers []int
}

// ParseProc parses the master CLI's `show proc` reply (HAProxy 2.6 format).
func ParseProc(reply string) (Proc, error) {
	var p Proc
	section := ""
	for _, line := range strings.Split(reply, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(line, "#<"):
			continue
		case strings.HasPrefix(line, "# "):
			section = strings.TrimSpace(line[2:])
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 3 {
			return Proc{}, fmt.Errorf("show proc line %q: %w", line, ErrParse)
		}
		switch {
		case section == "" && f[1] == "master":
			p.MasterPID = pid
			if p.Reloads, err = strconv.Atoi(f[2]); err != nil {
				return Proc{}, fmt.Errorf("show proc reloads %q: %w", f[2], ErrParse)
			}
			if len(f) >= 5 && f[3] == "[failed:" {
				if p.Failed, err = strconv.Atoi(strings.TrimSuffix(f[4], "]")); err != nil {
					return Proc{}, fmt.Errorf("show proc failed %q: %w", f[4], ErrParse)
				}
			}
		case section == "workers":
			p.Workers = append(p.Workers, pid)
		case section == "old workers":
			p.OldWorkers = append(p.OldWorkers, pid)
		}
	}
	if p.MasterPID == 0 {
		return Proc{}, fmt.Errorf("show proc: no master line: %w", ErrParse)
	}
	return p, nil
}
