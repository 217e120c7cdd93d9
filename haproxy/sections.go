package haproxy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/params"
	"github.com/haproxytech/client-native/v5/config-parser/parsers/actions"
	httpactions "github.com/haproxytech/client-native/v5/config-parser/parsers/http/actions"
	stats "github.com/haproxytech/client-native/v5/config-parser/parsers/stats/settings"
	tcptypes "github.com/haproxytech/client-native/v5/config-parser/parsers/tcp/types"
	"github.com/haproxytech/client-native/v5/config-parser/types"
)

// bindName is the name of a frontend's single bind line.
const bindName = "vip"

func bind(addr string, name, cert string, acceptProxy bool) *types.Bind {
	b := &types.Bind{Path: addr, Params: []params.BindOption{&params.BindOptionValue{Name: "name", Value: name}}}
	if acceptProxy {
		b.Params = append(b.Params, &params.BindOptionWord{Name: "accept-proxy"})
	}
	if cert != "" {
		b.Params = append(b.Params, &params.BindOptionValue{Name: "crt", Value: cert}, &params.BindOptionWord{Name: "ssl"})
	}
	return b
}

func (r *renderer) frontend(f Frontend) error {
	p, err := r.section(parser.Frontends, f.Name)
	if err != nil {
		return err
	}
	attrs := []attr{
		{"mode", &types.StringC{Value: mode(f.Mode)}},
		{"default_backend", &types.StringC{Value: f.Backend}},
	}
	if f.ClientTimeout != 0 {
		attrs = append(attrs, attr{"timeout client", &types.SimpleTimeout{Value: timeout(f.ClientTimeout)}})
	}
	if err := set(p, parser.Frontends, f.Name, attrs); err != nil {
		return err
	}
	if err := sourceRanges(p, f); err != nil {
		return fmt.Errorf("source ranges: %w", err)
	}
	return p.Insert(parser.Frontends, f.Name, "bind", bind(f.Bind.String(), bindName, f.CertFile, f.AcceptProxy), -1)
}

// srcACL names the ACL of a frontend's source ranges.
const srcACL = "edged_src"

// rangesPerLine is how many ranges one acl line holds: HAProxy splits a
// config line into at most 64 words (MAX_LINE_ARGS), and "acl NAME src"
// takes three; lines of one ACL name are ORed together.
const rangesPerLine = 32

// sourceRanges refuses every connection from outside f.SourceRanges. The
// rule runs on the connection (before TLS, before any byte is read) or,
// behind accept-proxy, on the session: HAProxy's connection rules see the
// proxy's address, its session rules the address the PROXY header carries.
func sourceRanges(p parser.Parser, f Frontend) error {
	if len(f.SourceRanges) == 0 {
		return nil
	}
	for rs := range slices.Chunk(f.SourceRanges, rangesPerLine) {
		vals := make([]string, len(rs))
		for i, r := range rs {
			vals[i] = r.String()
		}
		acl := &types.ACL{Name: srcACL, Criterion: "src", Value: strings.Join(vals, " ")}
		if err := p.Insert(parser.Frontends, f.Name, "acl", acl, -1); err != nil {
			return err
		}
	}
	reject := &actions.Reject{Cond: "unless", CondTest: srcACL}
	var rule types.TCPType = &tcptypes.Connection{Action: reject}
	if f.AcceptProxy {
		rule = &tcptypes.Session{Action: reject}
	}
	return p.Insert(parser.Frontends, f.Name, "tcp-request", rule, -1)
}

func (r *renderer) backend(b Backend) error {
	p, err := r.section(parser.Backends, b.Name)
	if err != nil {
		return err
	}
	algo := b.Balance
	if algo == "" {
		algo = "roundrobin"
	}
	attrs := []attr{
		{"mode", &types.StringC{Value: mode(b.Mode)}},
		{"balance", &types.Balance{Algorithm: algo}},
	}
	c := b.Check
	if c.Kind == CheckHTTP {
		attrs = append(attrs, attr{"option httpchk", &types.OptionHttpchk{}})
	}
	attrs = append(attrs, r.backendTimeouts(b)...)
	if b.Mode == ModeHTTP {
		// The client's address for the application; a header the client
		// sent itself stays before it, so an application that trusts one
		// proxy reads the last value.
		attrs = append(attrs, attr{"option forwardfor", &types.OptionForwardFor{}})
	}
	if b.Affinity > 0 {
		attrs = append(attrs, affinity(b.Affinity)...)
	}
	if err := set(p, parser.Backends, b.Name, attrs); err != nil {
		return err
	}
	if c.Kind == CheckHTTP {
		path := c.Path
		if path == "" {
			path = "/"
		}
		send := &httpactions.CheckSend{Method: "GET", URI: path}
		if c.Host != "" {
			send.Header = []httpactions.CheckSendHeader{{Name: "Host", Format: c.Host}}
		}
		if err := p.Insert(parser.Backends, b.Name, "http-check", send, -1); err != nil {
			return fmt.Errorf("http-check: %w", err)
		}
	}
	for i := range b.Slots {
		if err := p.Insert(parser.Backends, b.Name, "server", server(b, i), -1); err != nil {
			return fmt.Errorf("server %s: %w", slotName(i), err)
		}
	}
	return nil
}

// backendTimeouts are b's own timeouts; http backends always carry a
// tunnel timeout, since the defaults section has none (it would replace
// the client and server timeouts of TCP connections).
func (r *renderer) backendTimeouts(b Backend) []attr {
	var out []attr
	if b.ConnectTimeout != 0 {
		out = append(out, attr{"timeout connect", &types.SimpleTimeout{Value: timeout(b.ConnectTimeout)}})
	}
	if b.ServerTimeout != 0 {
		out = append(out, attr{"timeout server", &types.SimpleTimeout{Value: timeout(b.ServerTimeout)}})
	}
	if b.Mode == ModeHTTP {
		t := cmp.Or(b.TunnelTimeout, r.timeouts.Tunnel)
		out = append(out, attr{"timeout tunnel", &types.SimpleTimeout{Value: timeout(t)}})
	}
	return out
}

// affinityEntries bounds a backend's affinity table. A full table drops its
// oldest entries (those clients are balanced anew), so memory stays bounded
// (about 100 bytes an entry, allocated as clients arrive) whatever
// connects.
const affinityEntries = "100k"

// affinity renders ClientIP affinity: a table of client addresses (type
// ipv6 holds IPv4 clients too, as mapped addresses) that remembers each
// client's server slot for d after its last connection. HAProxy uses a
// remembered slot only while it is not stopped (maintenance or failed
// checks; edged never sets `option persist`), and stores the server each
// connection went to, so a slot whose endpoint went away sends its
// clients elsewhere for good, and a slot that got a new endpoint sends
// them to that live one. Slots are what a client sticks to, which is why
// runtime endpoint changes need no table flush.
func affinity(d time.Duration) []attr {
	return []attr{
		{"stick-table", &types.StickTable{Type: "ipv6", Size: affinityEntries, Expire: timeout(d)}},
		{"stick", []types.Stick{{Type: "on", Pattern: "src"}}},
	}
}

// server renders slot i: the endpoint assigned to it, or a placeholder in
// maintenance. Runtime state is re-applied after every reload anyway.
// Options are in the order client-native's own serializer writes them.
func server(b Backend, i int) *types.Server {
	s := &types.Server{Name: slotName(i)}
	maint := i >= len(b.Servers)
	if maint {
		s.Address = emptySlot + ":" + strconv.Itoa(emptySlotPort)
	} else {
		s.Address = b.Servers[i].Addr.String()
	}
	word := func(n string) { s.Params = append(s.Params, &params.ServerOptionWord{Name: n}) }
	value := func(n string, v int64) {
		s.Params = append(s.Params, &params.ServerOptionValue{Name: n, Value: strconv.FormatInt(v, 10)})
	}
	c := b.Check
	if c.Kind != CheckNone {
		word("check")
	}
	if maint {
		word("disabled")
	}
	if c.Kind != CheckNone {
		if c.Fall > 0 {
			value("fall", int64(c.Fall))
		}
		if c.Interval > 0 {
			value("inter", c.Interval.Milliseconds())
		}
		if c.Port != 0 {
			value("port", int64(c.Port))
		}
		if c.Rise > 0 {
			value("rise", int64(c.Rise))
		}
	}
	if b.ProxyV2 {
		word("send-proxy-v2")
	}
	return s
}

// statsFrontend is the name of the stats/Prometheus frontend.
const statsFrontend = "edged_stats"

func (r *renderer) stats(s Stats) error {
	var p parser.Parser
	if s.Bind.IsValid() {
		var err error
		if p, err = r.statsPage(s); err != nil {
			return err
		}
	}
	if !s.Prometheus.IsValid() {
		return nil
	}
	if s.Prometheus != s.Bind {
		var err error
		if p, err = r.section(parser.Frontends, exporterFrontend); err != nil {
			return err
		}
	}
	if err := r.exporter(p, s); err != nil {
		return fmt.Errorf("prometheus exporter: %w", err)
	}
	return nil
}

// statsPage renders the stats page frontend and returns its parser.
func (r *renderer) statsPage(s Stats) (parser.Parser, error) {
	p, err := r.section(parser.Frontends, statsFrontend)
	if err != nil {
		return nil, err
	}
	settings := []types.StatsSettings{&stats.OneWord{Name: "enable"}}
	if s.Refresh > 0 {
		settings = append(settings, &stats.Refresh{Delay: strconv.FormatInt(s.Refresh.Milliseconds(), 10)})
	}
	settings = append(settings, &stats.URI{Prefix: s.URI})
	if s.User != "" && s.Password != "" {
		settings = append(settings, &stats.Auth{User: s.User, Password: s.Password})
	}
	if err := set(p, parser.Frontends, statsFrontend, []attr{
		{"mode", &types.StringC{Value: string(ModeHTTP)}},
		{"stats", settings},
	}); err != nil {
		return nil, err
	}
	return p, p.Insert(parser.Frontends, statsFrontend, "bind", bind(s.Bind.String(), "stats", "", false), -1)
}

// exporterFrontend is the Prometheus exporter's frontend when it does not
// share the stats page's address.
const exporterFrontend = "edged_prometheus"

// statsUsers is the userlist holding the stats credentials for the
// Prometheus exporter, which `stats auth` does not cover.
const statsUsers = "edged_stats_users"

// exporter serves HAProxy's Prometheus exporter on /metrics of the stats
// frontend (or its own, at another address), behind the stats page's
// credentials when it has them: the
// exporter shows every Service's backends and servers.
func (r *renderer) exporter(p parser.Parser, s Stats) error {
	fe := statsFrontend
	if s.Prometheus != s.Bind {
		fe = exporterFrontend
		if err := set(p, parser.Frontends, fe, []attr{{"mode", &types.StringC{Value: string(ModeHTTP)}}}); err != nil {
			return err
		}
		if err := p.Insert(parser.Frontends, fe, "bind", bind(s.Prometheus.String(), "prometheus", "", false), -1); err != nil {
			return err
		}
	}
	use := &actions.UseService{Name: "prometheus-exporter", Cond: "if", CondTest: "{ path /metrics }"}
	if s.User == "" || s.Password == "" {
		return p.Insert(parser.Frontends, fe, "http-request", use, -1)
	}
	if err := p.SectionsCreate(parser.UserList, statsUsers); err != nil {
		return err
	}
	user := types.User{Name: s.User, Password: s.Password, IsInsecure: true}
	if err := p.Set(parser.UserList, statsUsers, "user", user); err != nil {
		return err
	}
	auth := &httpactions.Auth{Realm: "edged", Cond: "if", CondTest: "{ path /metrics } !{ http_auth(" + statsUsers + ") }"}
	if err := p.Insert(parser.Frontends, fe, "http-request", auth, -1); err != nil {
		return err
	}
	return p.Insert(parser.Frontends, fe, "http-request", use, -1)
}
