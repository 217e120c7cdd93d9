// Package lbconfig computes edged's desired HAProxy model from Kubernetes
// objects and raft allocations. It is pure: no I/O (certificate files are
// package certs' business).
// It guarantees that nothing taken from a Service annotation can inject
// HAProxy configuration (strict charsets, bounded integers) and that a bad
// Service is reported on its own while every other Service still renders.
package lbconfig

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/goldentooth/edged/haproxy"
)

// Prefix is the annotation namespace edged reads.
const Prefix = "edge.goldentooth.net/"

// The annotations edged reads (full keys, values in the trailing comments).
const (
	AnnMode          = Prefix + "mode"           // tcp | http
	AnnBackend       = Prefix + "backend"        // endpoints | nodeport
	AnnCheck         = Prefix + "check"          // none | tcp | http
	AnnCheckPath     = Prefix + "check-path"     // /healthz
	AnnCheckHost     = Prefix + "check-host"     // Host header for http checks
	AnnCheckInterval = Prefix + "check-interval" // Go duration, 100ms..5m
	AnnCheckRise     = Prefix + "check-rise"     // 1..20
	AnnCheckFall     = Prefix + "check-fall"     // 1..20
	AnnTLSSecret     = Prefix + "tls-secret"     // kubernetes.io/tls Secret in the Service's namespace
	AnnProxyProtocol = Prefix + "proxy-protocol" // "v2" | "none"
	AnnBalance       = Prefix + "balance"        // roundrobin | leastconn | source | first | random | static-rr
)

// The annotations of the connection contract (docs/service-contract.md).
// Timeouts are Go durations; client, server and tunnel take
// haproxy.MinIdleTimeout..MaxIdleTimeout (1s..168h), connect
// haproxy.MinConnectTimeout..MaxConnectTimeout (100ms..1m).
const (
	AnnAcceptProxy    = Prefix + "accept-proxy"    // "true" | "false": clients send a PROXY protocol header
	AnnTimeoutClient  = Prefix + "timeout-client"  // client-side idle timeout
	AnnTimeoutServer  = Prefix + "timeout-server"  // server-side idle timeout
	AnnTimeoutTunnel  = Prefix + "timeout-tunnel"  // upgraded HTTP (WebSocket); mode http only
	AnnTimeoutConnect = Prefix + "timeout-connect" // connecting to an endpoint
)

// AnnAnnouncingNode is the one annotation under Prefix that edged writes
// rather than reads: the edge hosts the raft state assigns the Service's
// IPs to (edge/kube, docs/kubernetes.md). ParseAnnotations skips it; it is
// no setting, and a stale or forged value changes nothing but itself.
const AnnAnnouncingNode = Prefix + "announcing-node"

// Backend modes: the values of AnnBackend and of edged.yaml's
// haproxy.backendMode (which also takes the older spelling "nodePort").
const (
	BackendEndpoints = "endpoints"
	BackendNodePort  = "nodeport"
)

// ErrAnnotation reports an annotation value edged refuses.
var ErrAnnotation = errors.New("invalid annotation")

// Bounds on check timing: below 100ms checks load small nodes for nothing;
// above 5m a dead endpoint goes unnoticed for too long. Rise/fall above 20
// is never useful.
const (
	minInterval = 100 * time.Millisecond
	maxInterval = 5 * time.Minute
	maxRiseFall = 20
)

var (
	pathRE   = regexp.MustCompile(`^/[A-Za-z0-9_./~%+=-]{0,200}$`)
	hostRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$`)
	secretRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
)

// Settings are a Service's parsed per-Service HAProxy settings.
type Settings struct {
	// Mode is the proxy mode (tcp or http).
	Mode haproxy.Mode
	// NodePort sends traffic to node InternalIP:NodePort instead of pods.
	NodePort bool
	// Check is the health check.
	Check haproxy.Check
	// TLSSecret names a kubernetes.io/tls Secret to terminate TLS with.
	TLSSecret string
	// ProxyV2 sends a PROXY protocol v2 header to the backends.
	ProxyV2 bool
	// Balance is the HAProxy balance algorithm.
	Balance string
	// AcceptProxy makes the VIP's binds require a PROXY protocol header.
	AcceptProxy bool
	// Timeouts are the Service's own timeouts; zero fields use edged.yaml's
	// haproxy.timeouts. Tunnel is set only in http mode.
	Timeouts haproxy.Timeouts
	// SourceRanges are the Service's loadBalancerSourceRanges, parsed and
	// masked; empty admits everyone (ParseService).
	SourceRanges []netip.Prefix
	// Affinity is the ClientIP session affinity timeout; zero: none
	// (ParseService).
	Affinity time.Duration
}

// DefaultSettings are used when a Service has no annotations.
func DefaultSettings(nodePort bool) Settings {
	return Settings{Mode: haproxy.ModeTCP, NodePort: nodePort, Check: haproxy.Check{Kind: haproxy.CheckTCP}, Balance: "roundrobin"}
}

// ParseAnnotations reads edged's annotations strictly. Unknown keys under
// Prefix are errors too, so a typo is reported instead of ignored.
func ParseAnnotations(ann map[string]string, nodePort bool) (Settings, error) {
	s := DefaultSettings(nodePort)
	var errs []error
	bad := func(k, v, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: want %s: %w", k, v, want, ErrAnnotation))
	}
	for _, k := range slices.Sorted(maps.Keys(ann)) {
		v := ann[k]
		if len(k) <= len(Prefix) || k[:len(Prefix)] != Prefix {
			continue
		}
		switch k {
		case AnnAnnouncingNode: // edged's own output, not a setting
		case AnnMode:
			if v != "tcp" && v != "http" {
				bad(k, v, "tcp or http")
			}
			s.Mode = haproxy.Mode(v)
		case AnnBackend:
			if v != BackendEndpoints && v != BackendNodePort {
				bad(k, v, BackendEndpoints+" or "+BackendNodePort)
			}
			s.NodePort = v == BackendNodePort
		case AnnCheck:
			if v != "none" && v != "tcp" && v != "http" {
				bad(k, v, "none, tcp or http")
			}
			s.Check.Kind = haproxy.CheckKind(v)
		case AnnCheckPath:
			if !pathRE.MatchString(v) {
				bad(k, v, "an absolute path of [A-Za-z0-9_./~%+=-]")
			}
			s.Check.Path = v
		case AnnCheckHost:
			if !hostRE.MatchString(v) {
				bad(k, v, "a host name with optional :port")
			}
			s.Check.Host = v
		case AnnCheckInterval:
			d, err := time.ParseDuration(v)
			if err != nil || d < minInterval || d > maxInterval {
				bad(k, v, "a duration between 100ms and 5m")
			}
			s.Check.Interval = d
		case AnnCheckRise, AnnCheckFall:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxRiseFall {
				bad(k, v, "an integer 1..20")
			}
			if k == AnnCheckRise {
				s.Check.Rise = n
			} else {
				s.Check.Fall = n
			}
		case AnnTLSSecret:
			if !secretRE.MatchString(v) {
				bad(k, v, "a Secret name in the Service's namespace")
			}
			s.TLSSecret = v
		case AnnProxyProtocol:
			if v != "v2" && v != "none" {
				bad(k, v, "v2 or none")
			}
			s.ProxyV2 = v == "v2"
		case AnnAcceptProxy:
			if v != "true" && v != "false" {
				bad(k, v, "true or false")
			}
			s.AcceptProxy = v == "true"
		case AnnTimeoutClient, AnnTimeoutServer, AnnTimeoutTunnel:
			d, err := time.ParseDuration(v)
			if err != nil || d == 0 || !haproxy.ValidIdleTimeout(d) {
				bad(k, v, fmt.Sprintf("a duration between %v and %v", haproxy.MinIdleTimeout, haproxy.MaxIdleTimeout))
			}
			switch k {
			case AnnTimeoutClient:
				s.Timeouts.Client = d
			case AnnTimeoutServer:
				s.Timeouts.Server = d
			default:
				s.Timeouts.Tunnel = d
			}
		case AnnTimeoutConnect:
			d, err := time.ParseDuration(v)
			if err != nil || d == 0 || !haproxy.ValidConnectTimeout(d) {
				bad(k, v, fmt.Sprintf("a duration between %v and %v", haproxy.MinConnectTimeout, haproxy.MaxConnectTimeout))
			}
			s.Timeouts.Connect = d
		case AnnBalance:
			switch v {
			case "roundrobin", "static-rr", "leastconn", "first", "source", "random":
			default:
				bad(k, v, "roundrobin, static-rr, leastconn, first, source or random")
			}
			s.Balance = v
		default:
			errs = append(errs, fmt.Errorf("%s: unknown annotation: %w", k, ErrAnnotation))
		}
	}
	if s.Check.Kind != haproxy.CheckHTTP && (s.Check.Path != "" || s.Check.Host != "") {
		errs = append(errs, fmt.Errorf("%s/%s need %s=http: %w", AnnCheckPath, AnnCheckHost, AnnCheck, ErrAnnotation))
	}
	if s.Timeouts.Tunnel != 0 && s.Mode != haproxy.ModeHTTP {
		// In TCP mode HAProxy's tunnel timeout would silently replace the
		// client and server timeouts: there they are the idle timeout.
		errs = append(errs, fmt.Errorf("%s needs %s=http (in tcp mode %s and %s are the idle timeout): %w", AnnTimeoutTunnel, AnnMode, AnnTimeoutClient, AnnTimeoutServer, ErrAnnotation))
	}
	if err := errors.Join(errs...); err != nil {
		return DefaultSettings(nodePort), err
	}
	return s, nil
}
