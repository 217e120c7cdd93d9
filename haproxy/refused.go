package haproxy

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxRefusal bounds one owner's refusal text: it goes into a Kubernetes
// Event in the owner's namespace.
const maxRefusal = 1024

var (
	alertPrefixRE = regexp.MustCompile(`^\[(ALERT|WARNING)\]\s*\(\d+\)\s*:\s*`)
	pathRE        = regexp.MustCompile(`/[^\s'"\]\[]+`)
)

// redact keeps what an alert says about a section and drops what it says
// about the host: file paths and line numbers (the candidate file's temp
// name, the operator's files, certificate paths) and the PID prefix.
func redact(line string) string {
	line = alertPrefixRE.ReplaceAllString(strings.TrimSpace(line), "")
	line = fileLineRE.ReplaceAllString(line, "[edged config]")
	return pathRE.ReplaceAllString(line, "<path>")
}

// refusals maps owners of n's sections to what HAProxy's validation said
// about those sections alone, redacted; sections without an owner (or not
// edged's) are not reported.
func refusals(n Model, ve *ValidateError) map[string]string {
	lines := map[string][]string{}
	owners := ownersByName(n)
	for _, sec := range ve.Sections() {
		o := owners[sec]
		if o == "" {
			continue
		}
		for _, l := range ve.Alerts[sec] {
			if r := redact(l); !slices.Contains(lines[o], r) {
				lines[o] = append(lines[o], r)
			}
		}
	}
	out := make(map[string]string, len(lines))
	for o, ls := range lines {
		out[o] = clip(strings.Join(ls, "; "), maxRefusal)
	}
	return out
}

// ownersByName maps section names to their owners.
func ownersByName(n Model) map[string]string {
	out := make(map[string]string, len(n.Frontends)+len(n.Backends))
	for _, f := range n.Frontends {
		out[f.Name] = f.Owner
	}
	for _, b := range n.Backends {
		out[b.Name] = b.Owner
	}
	return out
}

// bindConflicts explains a reload that `haproxy -c` accepted but the new
// worker could not start: it returns the owners of n's frontends whose
// address:port, or the wildcard of its family on that port, has a listening
// socket that is not HAProxy's own (another process on 0.0.0.0:PORT keeps
// HAProxy from binding VIP:PORT). HAProxy's own sockets are the binds of
// the loaded files (ours: the binds of the file on disk, which is always
// the loaded one, since a failed reload puts the previous file back), so
// this also holds right after edged restarted. It reads the kernel's
// listening sockets, so it needs no privilege and binds nothing.
func bindConflicts(n Model, own, listening map[netip.AddrPort]bool) map[string]string {
	out := map[string]string{}
	for _, f := range n.Frontends {
		if f.Owner == "" || own[f.Bind] {
			continue
		}
		for _, c := range []netip.AddrPort{f.Bind, wildcard(f.Bind, false), wildcard(f.Bind, true)} {
			if listening[c] && !own[c] {
				out[f.Owner] = fmt.Sprintf("HAProxy could not listen on %s: another process on the edge host already listens on %s", f.Bind, c)
				break
			}
		}
	}
	return out
}

// loadedBinds returns the addresses the running HAProxy listens on per its
// files: every "bind" line's address in the operator's files and in
// edged's file on disk, plus live's frontends. A bind without an address
// (":80", "*:80") is the IPv4 wildcard.
func (p Paths) loadedBinds(live *Model) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	if live != nil {
		for _, f := range live.Frontends {
			out[f.Bind] = true
		}
	}
	for _, file := range append(slices.Clone(p.OperatorConfigs), p.Config) {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "bind" {
				if a, ok := parseBind(f[1]); ok {
					out[a] = true
				}
			}
		}
	}
	return out
}

// parseBind parses a bind line's address: "1.2.3.4:80", "[::]:80",
// ":80", "*:80", with an optional "ipv4@"/"ipv6@" prefix.
func parseBind(s string) (netip.AddrPort, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "ipv4@"), "ipv6@")
	if rest, ok := strings.CutPrefix(s, "*:"); ok {
		s = "0.0.0.0:" + rest
	} else if strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	a, err := netip.ParseAddrPort(s)
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), err == nil
}

// wildcard is the any-address of a's family (v6: the IPv6 any-address,
// which also covers IPv4 on a dual-stack socket) with a's port.
func wildcard(a netip.AddrPort, v6 bool) netip.AddrPort {
	if v6 || a.Addr().Is6() {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), a.Port())
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port())
}

// procNetTCP are the kernel's TCP socket tables of this network namespace.
var procNetTCP = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// listeningSockets returns the addresses TCP sockets listen on in this
// network namespace.
func listeningSockets() (map[netip.AddrPort]bool, error) {
	out := map[netip.AddrPort]bool{}
	for _, f := range procNetTCP {
		if err := readListening(f, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

func readListening(path string, out map[netip.AddrPort]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("listening sockets: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpListen {
			continue
		}
		if a, ok := parseProcAddr(fields[1]); ok {
			out[a] = true
		}
	}
	return sc.Err()
}

// parseProcAddr parses /proc/net/tcp's "0100007F:1F90": the address as
// host-order 32-bit words in hex, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	raw, herr := hex.DecodeString(h)
	if !ok || err != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// clip shortens s to at most n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
