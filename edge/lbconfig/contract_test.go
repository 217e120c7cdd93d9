package lbconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// TestSourceRanges: loadBalancerSourceRanges (or kube-proxy's annotation
// when the field is empty) are parsed strictly; anything edged cannot
// enforce exactly refuses the Service with ErrSourceRanges.
func TestSourceRanges(t *testing.T) {
	many := make([]string, haproxy.MaxSourceRanges+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
	}
	tests := []struct {
		name    string
		field   []string
		ann     string // AnnSourceRanges, when not empty
		want    []netip.Prefix
		wantErr bool
	}{
		{name: "none", want: nil},
		{name: "field", field: []string{"10.4.0.0/20", "fd00:4::/64"}, want: prefixes("10.4.0.0/20", "fd00:4::/64")},
		{name: "host bits masked as kube-proxy does", field: []string{"10.4.1.7/20", " 192.168.1.1/32 "}, want: prefixes("10.4.0.0/20", "192.168.1.1/32")},
		{name: "annotation when the field is empty", ann: "10.0.0.0/8, 172.16.0.0/12", want: prefixes("10.0.0.0/8", "172.16.0.0/12")},
		{name: "field wins over annotation", field: []string{"10.4.0.0/20"}, ann: "0.0.0.0/0", want: prefixes("10.4.0.0/20")},
		{name: "bare address", field: []string{"10.4.0.1"}, wantErr: true},
		{name: "mask too long", field: []string{"10.4.0.0/33"}, wantErr: true},
		{name: "leading zeros", field: []string{"010.4.0.0/20"}, wantErr: true},
		{name: "zone", field: []string{"fe80::%eth0/64"}, wantErr: true},
		{name: "mapped", field: []string{"::ffff:10.0.0.0/104"}, wantErr: true},
		{name: "injection", field: []string{"10.0.0.0/8 }\n  server evil 1.2.3.4:80"}, wantErr: true},
		{name: "empty entry in annotation", ann: "10.0.0.0/8,", wantErr: true},
		{name: "one bad entry refuses all", field: []string{"10.4.0.0/20", "nope"}, wantErr: true},
		{name: "too many", field: many, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := lbService("default", "web", nil)
			svc.Spec.LoadBalancerSourceRanges = tt.field
			if tt.ann != "" {
				svc.Annotations = map[string]string{AnnSourceRanges: tt.ann}
			}
			got, err := ParseService(&svc, false)
			if tt.wantErr {
				if !errors.Is(err, ErrSourceRanges) {
					t.Fatalf("err = %v, want ErrSourceRanges", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got.SourceRanges, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("source ranges (-want +got):\n%s", d)
			}
		})
	}
}

// TestSessionAffinity: ClientIP gets Kubernetes' default timeout or its
// own, within Kubernetes' bounds.
func TestSessionAffinity(t *testing.T) {
	secs := func(n int32) *corev1.SessionAffinityConfig {
		return &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &n}}
	}
	tests := []struct {
		name    string
		aff     corev1.ServiceAffinity
		cfg     *corev1.SessionAffinityConfig
		want    time.Duration
		wantErr bool
	}{
		{name: "unset"},
		{name: "None", aff: corev1.ServiceAffinityNone},
		{name: "ClientIP default", aff: corev1.ServiceAffinityClientIP, want: 10800 * time.Second},
		{name: "ClientIP empty config", aff: corev1.ServiceAffinityClientIP, cfg: &corev1.SessionAffinityConfig{}, want: 10800 * time.Second},
		{name: "ClientIP 60s", aff: corev1.ServiceAffinityClientIP, cfg: secs(60), want: time.Minute},
		{name: "ClientIP a day", aff: corev1.ServiceAffinityClientIP, cfg: secs(86400), want: 24 * time.Hour},
		{name: "zero", aff: corev1.ServiceAffinityClientIP, cfg: secs(0), wantErr: true},
		{name: "beyond a day", aff: corev1.ServiceAffinityClientIP, cfg: secs(86401), wantErr: true},
		{name: "unknown", aff: "Cookie", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := lbService("default", "web", nil)
			svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig = tt.aff, tt.cfg
			got, err := ParseService(&svc, false)
			if tt.wantErr {
				if !errors.Is(err, ErrSessionAffinity) {
					t.Fatalf("err = %v, want ErrSessionAffinity", err)
				}
				return
			}
			if err != nil || got.Affinity != tt.want {
				t.Errorf("affinity = %v, %v; want %v", got.Affinity, err, tt.want)
			}
		})
	}
}

// TestBuildContract: a Service's source ranges, affinity, accept-proxy and
// timeouts reach every one of its sections, edged.yaml's timeouts reach the
// model, and a Service with a bad range is left out (never served open)
// while the others render.
func TestBuildContract(t *testing.T) {
	web := lbService("default", "web", map[string]string{AnnMode: "http", AnnAcceptProxy: "true",
		AnnTimeoutClient: "2h", AnnTimeoutServer: "3h", AnnTimeoutTunnel: "4h", AnnTimeoutConnect: "2s"})
	web.Spec.LoadBalancerSourceRanges = []string{"10.4.0.0/20"}
	web.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	bad := lbService("default", "bad", nil)
	bad.Spec.LoadBalancerSourceRanges = []string{"10.4.0.0/20", "everyone"}
	defaults := haproxy.Timeouts{Client: time.Hour}
	two := lbpool.Allocation{IPs: []netip.Addr{netip.MustParseAddr("10.4.11.1"), netip.MustParseAddr("fd00:4::1")}, Ports: tcp80}
	got, problems := Build(Input{Services: ptrs(web, bad), Timeouts: defaults,
		Allocations: map[string]lbpool.Allocation{"default/web": two, "default/bad": alloc("10.4.11.2")}})
	if len(problems) != 1 || problems[0].Key != "default/bad" || !errors.Is(problems[0], ErrSourceRanges) {
		t.Fatalf("problems = %v, want one ErrSourceRanges for default/bad", problems)
	}
	if got.Timeouts != defaults {
		t.Errorf("model timeouts = %+v, want edged.yaml's %+v", got.Timeouts, defaults)
	}
	if len(got.Frontends) != 2 || len(got.Backends) != 1 {
		t.Fatalf("%d frontends, %d backends; want web's 2 and 1 only", len(got.Frontends), len(got.Backends))
	}
	for _, fe := range got.Frontends {
		if !fe.AcceptProxy || fe.ClientTimeout != 2*time.Hour || !cmp.Equal(fe.SourceRanges, prefixes("10.4.0.0/20"), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
			t.Errorf("frontend %s = %+v, want accept-proxy, 2h client timeout, 10.4.0.0/20 only", fe.Name, fe)
		}
	}
	be := got.Backends[0]
	if be.Affinity != DefaultAffinity || be.ServerTimeout != 3*time.Hour || be.TunnelTimeout != 4*time.Hour || be.ConnectTimeout != 2*time.Second {
		t.Errorf("backend = %+v, want affinity 3h and timeouts 2s/3h/4h", be)
	}
	if _, err := haproxy.Render(got); err != nil {
		t.Errorf("Render(Build) = %v", err)
	}
}

// TestIPMode: VIP unless HAProxy rewrites the traffic or refuses the
// Service; the global Proxy makes every Service Proxy.
func TestIPMode(t *testing.T) {
	vip, proxy := corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy
	badRange := lbService("default", "web", nil)
	badRange.Spec.LoadBalancerSourceRanges = []string{"nope"}
	tests := []struct {
		name   string
		svc    corev1.Service
		global corev1.LoadBalancerIPMode
		want   corev1.LoadBalancerIPMode
	}{
		{name: "plain tcp", svc: lbService("default", "web", nil), global: vip, want: vip},
		{name: "global Proxy", svc: lbService("default", "web", nil), global: proxy, want: proxy},
		{name: "http mode", svc: lbService("default", "web", map[string]string{AnnMode: "http"}), global: vip, want: proxy},
		{name: "TLS", svc: lbService("default", "web", map[string]string{AnnTLSSecret: "web-tls"}), global: vip, want: proxy},
		{name: "PROXY to endpoints", svc: lbService("default", "web", map[string]string{AnnProxyProtocol: "v2"}), global: vip, want: proxy},
		{name: "accept-proxy alone", svc: lbService("default", "web", map[string]string{AnnAcceptProxy: "true"}), global: vip, want: vip},
		{name: "bad annotation", svc: lbService("default", "web", map[string]string{AnnMode: "udp"}), global: vip, want: proxy},
		{name: "bad source range", svc: badRange, global: vip, want: proxy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPMode(&tt.svc, tt.global); got != tt.want {
				t.Errorf("IPMode = %s, want %s", got, tt.want)
			}
		})
	}
}
