package haproxy

import (
	"fmt"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/configuration"
	"github.com/haproxytech/client-native/v5/models"
)

// bindName is the name of a frontend's single bind line.
const bindName = "vip"

func addBind(p parser.Parser, section parser.Section, name string, b models.Bind) error {
	return p.Insert(section, name, "bind", configuration.SerializeBind(b), -1)
}

func renderFrontend(p parser.Parser, f Frontend) error {
	if err := p.SectionsCreate(parser.Frontends, f.Name); err != nil {
		return err
	}
	fe := models.Frontend{Mode: mode(f.Mode), DefaultBackend: f.Backend}
	if err := configuration.CreateEditSection(&fe, parser.Frontends, f.Name, p); err != nil {
		return err
	}
	b := models.Bind{Address: f.Bind.Addr().String(), Port: i64(int64(f.Bind.Port()))}
	b.Name = bindName
	if f.CertFile != "" {
		b.Ssl = true
		b.SslCertificate = f.CertFile
	}
	return addBind(p, parser.Frontends, f.Name, b)
}

func renderBackend(p parser.Parser, b Backend) error {
	if err := p.SectionsCreate(parser.Backends, b.Name); err != nil {
		return err
	}
	algo := b.Balance
	if algo == "" {
		algo = "roundrobin"
	}
	be := models.Backend{Mode: mode(b.Mode), Balance: &models.Balance{Algorithm: &algo}}
	c := b.Check
	if c.Kind == CheckHTTP {
		be.AdvCheck = models.BackendAdvCheckHttpchk
	}
	if err := configuration.CreateEditSection(&be, parser.Backends, b.Name, p); err != nil {
		return err
	}
	if c.Kind == CheckHTTP {
		path := c.Path
		if path == "" {
			path = "/"
		}
		hc := models.HTTPCheck{Type: "send", Method: "GET", URI: path}
		if c.Host != "" {
			hc.CheckHeaders = []*models.ReturnHeader{{Name: strp("Host"), Fmt: strp(c.Host)}}
		}
		act, err := configuration.SerializeHTTPCheck(hc)
		if err != nil {
			return fmt.Errorf("http-check: %w", err)
		}
		if err := p.Insert(parser.Backends, b.Name, "http-check", act, -1); err != nil {
			return err
		}
	}
	for i := range b.Slots {
		if err := p.Insert(parser.Backends, b.Name, "server", configuration.SerializeServer(server(b, i)), -1); err != nil {
			return err
		}
	}
	return nil
}

func strp(s string) *string { return &s }

// server renders slot i: the endpoint assigned to it, or a placeholder in
// maintenance. Runtime state is re-applied after every reload anyway.
func server(b Backend, i int) models.Server {
	s := models.Server{Name: slotName(i)}
	if i < len(b.Servers) {
		s.Address = b.Servers[i].Addr.Addr().String()
		s.Port = i64(int64(b.Servers[i].Addr.Port()))
	} else {
		s.Address = emptySlot
		s.Port = i64(emptySlotPort)
		s.Maintenance = models.ServerParamsMaintenanceEnabled
	}
	c := b.Check
	if c.Kind != CheckNone {
		s.Check = models.ServerParamsCheckEnabled
		if c.Interval > 0 {
			s.Inter = i64(c.Interval.Milliseconds())
		}
		if c.Rise > 0 {
			s.Rise = i64(int64(c.Rise))
		}
		if c.Fall > 0 {
			s.Fall = i64(int64(c.Fall))
		}
		if c.Port != 0 {
			s.HealthCheckPort = i64(int64(c.Port))
		}
	}
	if b.ProxyV2 {
		s.SendProxyV2 = models.ServerParamsSendProxyV2Enabled
	}
	return s
}

// statsFrontend is the name of the stats/Prometheus frontend.
const statsFrontend = "edged_stats"

func renderStats(p parser.Parser, s Stats) error {
	if err := p.SectionsCreate(parser.Frontends, statsFrontend); err != nil {
		return err
	}
	so := &models.StatsOptions{StatsEnable: true, StatsURIPrefix: s.URI}
	if s.Refresh > 0 {
		so.StatsRefreshDelay = i64(s.Refresh.Milliseconds())
	}
	if s.User != "" && s.Password != "" {
		so.StatsAuths = []*models.StatsAuth{{User: strp(s.User), Passwd: strp(s.Password)}}
	}
	fe := models.Frontend{Mode: string(ModeHTTP), StatsOptions: so}
	if err := configuration.CreateEditSection(&fe, parser.Frontends, statsFrontend, p); err != nil {
		return err
	}
	if s.Prometheus {
		r := models.HTTPRequestRule{Type: "use-service", ServiceName: "prometheus-exporter", Cond: "if", CondTest: "{ path /metrics }"}
		act, err := configuration.SerializeHTTPRequestRule(r)
		if err != nil {
			return fmt.Errorf("prometheus rule: %w", err)
		}
		if err := p.Insert(parser.Frontends, statsFrontend, "http-request", act, -1); err != nil {
			return err
		}
	}
	b := models.Bind{Address: s.Bind.Addr().String(), Port: i64(int64(s.Bind.Port()))}
	b.Name = "stats"
	return addBind(p, parser.Frontends, statsFrontend, b)
}
