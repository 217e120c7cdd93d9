package haproxy

import (
	"fmt"
	"strconv"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/params"
	"github.com/haproxytech/client-native/v5/config-parser/parsers/actions"
	httpactions "github.com/haproxytech/client-native/v5/config-parser/parsers/http/actions"
	stats "github.com/haproxytech/client-native/v5/config-parser/parsers/stats/settings"
	"github.com/haproxytech/client-native/v5/config-parser/types"
)

// bindName is the name of a frontend's single bind line.
const bindName = "vip"

func bind(addr string, name, cert string) *types.Bind {
	b := &types.Bind{Path: addr, Params: []params.BindOption{&params.BindOptionValue{Name: "name", Value: name}}}
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
	if err := set(p, parser.Frontends, f.Name, []attr{
		{"mode", &types.StringC{Value: mode(f.Mode)}},
		{"default_backend", &types.StringC{Value: f.Backend}},
	}); err != nil {
		return err
	}
	return p.Insert(parser.Frontends, f.Name, "bind", bind(f.Bind.String(), bindName, f.CertFile), -1)
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
	return p, p.Insert(parser.Frontends, statsFrontend, "bind", bind(s.Bind.String(), "stats", ""), -1)
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
		if err := p.Insert(parser.Frontends, fe, "bind", bind(s.Prometheus.String(), "prometheus", ""), -1); err != nil {
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
