package haproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/options"
	"github.com/haproxytech/client-native/v5/config-parser/types"
)

// ErrInvalidModel reports a Model that cannot be rendered safely.
var ErrInvalidModel = errors.New("invalid haproxy model")

// nameChars and safeChars are the charsets of section names edged
// generates and of free-text values (paths, Host headers, credentials, file
// paths): no spaces, quotes, backslashes, '#' or control bytes, so nothing
// can break out of a config line. Table lookups, not regexps: Validate runs
// on every Service of every render.
var nameChars, safeChars = charset("_.:-"), charset("_./:@%+=~,-")

// maxValueLen bounds a free-text value.
const maxValueLen = 255

// charset returns the ASCII letters and digits plus extra.
func charset(extra string) (set [256]bool) {
	for c := '0'; c <= '9'; c++ {
		set[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		set[c], set[c-'a'+'A'] = true, true
	}
	for i := range len(extra) {
		set[extra[i]] = true
	}
	return set
}

// within reports whether s has 1 to limit bytes, all in set.
func within(s string, set *[256]bool, limit int) bool {
	if len(s) == 0 || len(s) > limit {
		return false
	}
	for i := range len(s) {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// validName reports whether s may be a section name edged renders.
func validName(s string) bool { return within(s, &nameChars, MaxNameLen) }

// FitName returns name if it has at most limit bytes; a longer name is cut
// and ends in "_" plus 12 hex digits of the SHA-256 of the whole name:
// stable across renders, restarts and hosts, and distinct for distinct
// names (48 bits: a collision among one cluster's names is not a practical
// risk). limit must exceed 13.
func FitName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:limit-fitHashLen-1] + "_" + hex.EncodeToString(sum[:])[:fitHashLen]
}

// fitHashLen is how many hex digits of the SHA-256 a fitted name keeps.
const fitHashLen = 12

// SafeValue reports whether s may be written into edged's HAProxy file
// as a free-text value (a path, a Host header, a credential, a file path):
// 1 to 255 bytes of [A-Za-z0-9_./:@%+=~,-]. Config validation uses it so
// that `edged validate` refuses what every render would refuse.
func SafeValue(s string) bool { return within(s, &safeChars, maxValueLen) }

// balances are the balance algorithms edged accepts.
var balances = map[string]bool{"roundrobin": true, "static-rr": true, "leastconn": true, "first": true, "source": true, "random": true}

// emptySlot is the address of an unused server slot; it is never contacted
// because the slot stays in maintenance until an endpoint is assigned.
const emptySlot = "127.0.0.1"

// emptySlotPort is the port rendered for an unused slot (tcpmux, never used).
const emptySlotPort = 1

// slotName returns the server name of slot i (0-based).
func slotName(i int) string { return fmt.Sprintf("s%d", i+1) }

// Validate checks that every name and free-text value is inside the safe
// charset and references resolve.
func (m Model) Validate() error {
	backends := make(map[string]bool, len(m.Backends))
	for _, b := range m.Backends {
		if !validName(b.Name) || backends[b.Name] {
			return fmt.Errorf("backend %q: bad or duplicate name: %w", b.Name, ErrInvalidModel)
		}
		backends[b.Name] = true
		if err := b.validate(); err != nil {
			return fmt.Errorf("backend %s: %w", b.Name, err)
		}
	}
	seen := make(map[string]bool, len(m.Frontends))
	binds := make(map[netip.AddrPort]string, len(m.Frontends))
	for _, f := range m.Frontends {
		switch {
		case !validName(f.Name) || seen[f.Name]:
			return fmt.Errorf("frontend %q: bad or duplicate name: %w", f.Name, ErrInvalidModel)
		case !backends[f.Backend]:
			return fmt.Errorf("frontend %s: unknown backend %q: %w", f.Name, f.Backend, ErrInvalidModel)
		case !plainAddr(f.Bind) || f.Bind.Port() == 0:
			return fmt.Errorf("frontend %s: bad bind %q: %w", f.Name, f.Bind, ErrInvalidModel)
		case binds[f.Bind] != "":
			return fmt.Errorf("frontend %s: bind %v is also frontend %s's: %w", f.Name, f.Bind, binds[f.Bind], ErrInvalidModel)
		case f.CertFile != "" && !SafeValue(f.CertFile):
			return fmt.Errorf("frontend %s: bad cert path: %w", f.Name, ErrInvalidModel)
		case f.Mode != "" && f.Mode != ModeTCP && f.Mode != ModeHTTP:
			return fmt.Errorf("frontend %s: bad mode %q: %w", f.Name, f.Mode, ErrInvalidModel)
		case !ValidIdleTimeout(f.ClientTimeout):
			return fmt.Errorf("frontend %s: client timeout %v: want %v..%v: %w", f.Name, f.ClientTimeout, MinIdleTimeout, MaxIdleTimeout, ErrInvalidModel)
		}
		if err := validRanges(f.SourceRanges); err != nil {
			return fmt.Errorf("frontend %s: %w", f.Name, err)
		}
		seen[f.Name] = true
		binds[f.Bind] = f.Name
	}
	if err := m.Timeouts.Validate(); err != nil {
		return fmt.Errorf("defaults: %w", err)
	}
	if s := m.Stats; s != nil {
		if !s.Bind.IsValid() && !s.Prometheus.IsValid() || badListen(s.Bind) || badListen(s.Prometheus) || !SafeValue(s.URI) || !strings.HasPrefix(s.URI, "/") ||
			(s.User != "" && !SafeValue(s.User)) || (s.Password != "" && !SafeValue(s.Password)) {
			return fmt.Errorf("stats: bad bind, uri or credentials: %w", ErrInvalidModel)
		}
	}
	return nil
}

func (b Backend) validate() error {
	c := b.Check
	switch {
	case b.Mode != "" && b.Mode != ModeTCP && b.Mode != ModeHTTP:
		return fmt.Errorf("bad mode %q: %w", b.Mode, ErrInvalidModel)
	case b.Balance != "" && !balances[b.Balance]:
		return fmt.Errorf("bad balance %q: %w", b.Balance, ErrInvalidModel)
	case c.Kind != "" && c.Kind != CheckNone && c.Kind != CheckTCP && c.Kind != CheckHTTP:
		return fmt.Errorf("bad check kind %q: %w", c.Kind, ErrInvalidModel)
	case c.Path != "" && (!SafeValue(c.Path) || !strings.HasPrefix(c.Path, "/")):
		return fmt.Errorf("bad check path %q: %w", c.Path, ErrInvalidModel)
	case c.Host != "" && !SafeValue(c.Host):
		return fmt.Errorf("bad check host %q: %w", c.Host, ErrInvalidModel)
	case c.Rise < 0 || c.Rise > 100 || c.Fall < 0 || c.Fall > 100 || c.Interval < 0:
		return fmt.Errorf("bad check rise/fall/interval: %w", ErrInvalidModel)
	case b.TunnelTimeout != 0 && b.Mode != ModeHTTP:
		return fmt.Errorf("tunnel timeout in %s mode (http only): %w", mode(b.Mode), ErrInvalidModel)
	case b.Affinity < 0 || b.Affinity > MaxAffinity || b.Affinity%time.Second != 0:
		return fmt.Errorf("affinity %v: want whole seconds up to %v: %w", b.Affinity, MaxAffinity, ErrInvalidModel)
	}
	if err := (Timeouts{Connect: b.ConnectTimeout, Server: b.ServerTimeout, Tunnel: b.TunnelTimeout}).Validate(); err != nil {
		return err
	}
	if len(b.Servers) > MaxServers {
		return fmt.Errorf("%d servers, at most %d: %w", len(b.Servers), MaxServers, ErrInvalidModel)
	}
	for _, s := range b.Servers {
		if !plainAddr(s.Addr) || s.Addr.Port() == 0 {
			return fmt.Errorf("bad server %q: %w", s.Addr, ErrInvalidModel)
		}
	}
	return nil
}

// validRanges checks source ranges: at most MaxSourceRanges, each a
// valid, masked prefix of a plain address (no zone, not IPv4-mapped: HAProxy
// would match a mapped range against IPv4 clients in ways a reader of the
// Service would not expect).
func validRanges(rs []netip.Prefix) error {
	if len(rs) > MaxSourceRanges {
		return fmt.Errorf("%d source ranges, at most %d: %w", len(rs), MaxSourceRanges, ErrInvalidModel)
	}
	for _, r := range rs {
		if !r.IsValid() || r != r.Masked() || r.Addr().Zone() != "" || r.Addr().Is4In6() {
			return fmt.Errorf("bad source range %q: %w", r, ErrInvalidModel)
		}
	}
	return nil
}

// badListen reports whether a, when set, is not a bare address with a port.
func badListen(a netip.AddrPort) bool {
	return a.IsValid() && (!plainAddr(a) || a.Port() == 0)
}

// plainAddr reports whether a renders as a bare address: valid, no zone
// (a zone may hold any bytes, newlines included) and not IPv4-mapped.
func plainAddr(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.IsValid() && ip.Zone() == "" && !ip.Is4In6()
}

// Render returns edged's config file for m: a defaults section of its own
// followed by sorted frontends and backends. It fails on an invalid model.
func Render(m Model) ([]byte, error) { return render(m, renderChunk) }

// render is Render with chunk sections per parser.
func render(m Model, chunk int) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return renderNormal(m.normalize(), chunk)
}

// renderNormal renders a validated, normalized model (the Manager's plan
// output: it validated the model and normalized it once).
func renderNormal(m Model, chunk int) ([]byte, error) {
	r := renderer{chunk: chunk, timeouts: m.Timeouts.orDefaults()}
	r.out.Grow(renderSizeHint(m))
	r.out.WriteString("# Generated by edged. Do not edit: it is rewritten on every change.\n")
	if err := r.defaults(r.timeouts); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	if m.Stats != nil {
		if err := r.stats(*m.Stats); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	for _, f := range m.Frontends {
		if err := r.frontend(f); err != nil {
			return nil, fmt.Errorf("frontend %s: %w", f.Name, err)
		}
	}
	for _, b := range m.Backends {
		if err := r.backend(b); err != nil {
			return nil, fmt.Errorf("backend %s: %w", b.Name, err)
		}
	}
	r.flush()
	return r.out.Bytes(), nil
}

// renderChunk is how many sections share one config parser. config-parser
// builds every attribute parser of a section when the section is created
// (~28 KB each), so the reference pool's 2,558 sections in one parser held
// ~72 MB live at once; a parser per chunk keeps that to ~2 MB and the text
// is the same (an empty parser prints nothing, sections print in creation
// order within their kind, and chunks are created in file order).
const renderChunk = 64

// renderer writes sections through client-native's config parser, a chunk
// of sections per parser.
type renderer struct {
	out      bytes.Buffer
	chunk    int
	p        parser.Parser
	n        int
	timeouts Timeouts // the model's, defaults filled in
}

// section starts section name of kind s, flushing a full chunk first.
func (r *renderer) section(s parser.Section, name string) (parser.Parser, error) {
	if r.p != nil && r.n >= r.chunk {
		r.flush()
	}
	if r.p == nil {
		p, err := parser.New(options.NoNamedDefaultsFrom)
		if err != nil {
			return nil, fmt.Errorf("new parser: %w", err)
		}
		r.p = p
	}
	r.n++
	return r.p, r.p.SectionsCreate(s, name)
}

// flush appends the current chunk's text and drops its parser.
func (r *renderer) flush() {
	if r.p != nil {
		r.out.WriteString(r.p.String())
		r.p, r.n = nil, 0
	}
}

// renderSizeHint estimates the file size (about 70 bytes a line).
func renderSizeHint(m Model) int {
	n := 16
	for _, b := range m.Backends {
		n += 6 + b.Slots
	}
	return (n + 5*len(m.Frontends)) * 70
}

func mode(m Mode) string {
	if m == "" {
		return string(ModeTCP)
	}
	return string(m)
}

// defaults writes edged's defaults section: the model's timeouts (the
// tunnel timeout goes into http backends only, see Backend.TunnelTimeout),
// the http request timeouts, and TCP keepalives on both sides, so the
// kernel finds a vanished client or server of an idle connection in about
// two hours (its keepalive defaults) instead of the idle timeout.
func (r *renderer) defaults(t Timeouts) error {
	p, err := r.section(parser.Defaults, parser.DefaultSectionName)
	if err != nil {
		return err
	}
	return set(p, parser.Defaults, parser.DefaultSectionName, []attr{
		{"mode", &types.StringC{Value: string(ModeTCP)}},
		{"option tcpka", &types.SimpleOption{}},
		{"timeout connect", &types.SimpleTimeout{Value: timeout(t.Connect)}},
		{"timeout client", &types.SimpleTimeout{Value: timeout(t.Client)}},
		{"timeout server", &types.SimpleTimeout{Value: timeout(t.Server)}},
		{"timeout http-request", &types.SimpleTimeout{Value: timeout(httpRequestTimeout)}},
		{"timeout http-keep-alive", &types.SimpleTimeout{Value: timeout(httpKeepAliveTimeout)}},
	})
}

// attr is one single-valued attribute of a section.
type attr struct {
	name string
	data any
}

func set(p parser.Parser, s parser.Section, name string, attrs []attr) error {
	for _, a := range attrs {
		if err := p.Set(s, name, a.name, a.data); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	return nil
}
