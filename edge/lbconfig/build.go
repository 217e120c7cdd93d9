package lbconfig

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/lbpool"
)

// Input is everything Build needs.
type Input struct {
	// Services are all Services; only type LoadBalancer with an allocation
	// render. Build never modifies the objects (they may be a cache's).
	Services []*corev1.Service
	// Slices are all EndpointSlices (matched by kubernetes.io/service-name).
	Slices []*discoveryv1.EndpointSlice
	// Nodes supply InternalIPs in nodeport mode.
	Nodes []*corev1.Node
	// Allocations maps "namespace/name" to the Service's raft allocation:
	// its VIPs and the ports granted with them. Only granted ports get a
	// frontend, so a Service whose port change the allocator refused (a
	// port another Service on a shared IP holds) never binds it.
	Allocations map[string]lbpool.Allocation
	// NodePort makes nodeport the default backend mode.
	NodePort bool
	// CertDir is where certs.Write puts PEM files.
	CertDir string
	// Slots is the number of server slots per backend (haproxy.serverSlots);
	// zero means haproxy.MinSlots. More endpoints still fit (rounded up).
	Slots int
	// Stats is copied into the model.
	Stats *haproxy.Stats
	// Timeouts are edged.yaml's haproxy.timeouts, copied into the model as
	// every section's defaults (a Service's annotations override them).
	Timeouts haproxy.Timeouts
	// Settings, when set, returns a Service's parsed settings (a caller
	// that keeps them per resourceVersion parses each version once); nil
	// parses them with ParseService(svc, NodePort).
	Settings func(svc *corev1.Service) (Settings, error)
	// Exclude leaves these Services ("namespace/name") out with the given
	// error (e.g. one whose render HAProxy refused, or whose TLS Secret is
	// missing or unusable); each is reported as a Problem.
	Exclude map[string]error
}

// Kinds of objects a Problem is about.
const (
	KindService = "Service"
	KindNode    = "Node"
)

// Problem is something wrong with one Kubernetes object; the caller raises
// an Event on it. Build reports every Problem and keeps going: a Service
// with one is left out, or served without the part that is wrong, and no
// other object is affected.
type Problem struct {
	// Kind is KindService or KindNode.
	Kind string
	// Key is "namespace/name" for a Service, the name for a Node.
	Key string
	// Err wraps one of this package's sentinels or haproxy.ErrInvalidModel.
	Err error
}

// Error implements error.
func (p Problem) Error() string { return p.Kind + " " + p.Key + ": " + p.Err.Error() }

// Unwrap returns the cause.
func (p Problem) Unwrap() error { return p.Err }

// Errors wrapped by Problems; the message says what and where.
var (
	// ErrEndpoint: an endpoint or Node address was refused and left out.
	ErrEndpoint = errors.New("unusable endpoint address")
	// ErrTooManyEndpoints: a backend was cut to haproxy.MaxServers servers.
	ErrTooManyEndpoints = errors.New("too many endpoints")
	// ErrNoNodePort: a nodeport backend without a NodePort is not served.
	ErrNoNodePort = errors.New("no NodePort")
	// ErrPortNotAllocated: a port outside the allocation is not served.
	ErrPortNotAllocated = errors.New("port not allocated")
)

// healthzPath is kube-proxy's health check path on healthCheckNodePort.
const healthzPath = "/healthz"

// Build returns the desired model. Every frontend and backend carries its
// Service's key as Owner. A Service with a bad annotation, a refused TLS
// Secret or a section HAProxy would refuse is left out and reported; bad
// endpoints and ports are left out of their Service and reported; every
// other Service still renders.
func Build(in Input) (haproxy.Model, []Problem) {
	b := builder{in: in, bySvc: slicesByService(in.Slices), binds: make(map[netip.AddrPort]string, len(in.Allocations))}
	b.m.Frontends = make([]haproxy.Frontend, 0, len(in.Allocations))
	b.m.Backends = make([]haproxy.Backend, 0, len(in.Allocations))
	b.m.Stats, b.m.Timeouts = in.Stats, in.Timeouts
	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, svc := range svcs {
		b.add(svc)
	}
	return b.m, b.problems
}

// builder accumulates the model and the problems of one Build.
type builder struct {
	in       Input
	bySvc    map[string][]*discoveryv1.EndpointSlice
	nodes    []netip.Addr // parsed once, on the first nodeport Service
	nodesOK  bool
	binds    map[netip.AddrPort]string // bind -> owner, across Services
	m        haproxy.Model
	problems []Problem
}

func (b *builder) problem(kind, key string, err error) {
	b.problems = append(b.problems, Problem{Kind: kind, Key: key, Err: err})
}

// add renders one Service, or reports why it is left out.
func (b *builder) add(svc *corev1.Service) {
	key := cache.MetaObjectToName(svc).String()
	alloc := b.in.Allocations[key]
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(alloc.IPs) == 0 {
		return
	}
	if err, ok := b.in.Exclude[key]; ok {
		b.problem(KindService, key, err)
		return
	}
	set, err := b.settings(svc)
	if err != nil {
		b.problem(KindService, key, err)
		return
	}
	fes, bes := b.service(key, svc, set, alloc)
	if err := (haproxy.Model{Frontends: fes, Backends: bes}).Validate(); err != nil {
		b.problem(KindService, key, fmt.Errorf("left out: %w", err))
		return
	}
	for _, fe := range fes {
		if other := b.binds[fe.Bind]; other != "" {
			b.problem(KindService, key, fmt.Errorf("%v is served for %s: %w", fe.Bind, other, ErrPortNotAllocated))
			continue
		}
		b.binds[fe.Bind] = key
		b.m.Frontends = append(b.m.Frontends, fe)
	}
	b.m.Backends = append(b.m.Backends, bes...)
}

func (b *builder) settings(svc *corev1.Service) (Settings, error) {
	if b.in.Settings != nil {
		return b.in.Settings(svc)
	}
	return ParseService(svc, b.in.NodePort)
}

// slicesByService indexes EndpointSlices by "namespace/service name", so
// a build looks at each slice once, not once per Service port.
func slicesByService(all []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := make(map[string][]*discoveryv1.EndpointSlice, len(all))
	for _, es := range all {
		if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
			k := cache.NewObjectName(es.Namespace, name).String()
			out[k] = append(out[k], es)
		}
	}
	return out
}

// service returns the Service's sections: one backend per proxied,
// granted port and one frontend per VIP of it.
func (b *builder) service(key string, svc *corev1.Service, set Settings, alloc lbpool.Allocation) ([]haproxy.Frontend, []haproxy.Backend) {
	var fes []haproxy.Frontend
	var bes []haproxy.Backend
	eps := b.bySvc[key]
	bad := &RefusedAddrs{}
	for _, p := range svc.Spec.Ports {
		proto := protocol(p.Protocol)
		switch {
		case proto != corev1.ProtocolTCP:
			continue // UDP and SCTP are forwarded by edge/nft
		case !granted(alloc, p):
			b.problem(KindService, key, fmt.Errorf("port %d/TCP is not part of the allocation of %v (the change was refused; see the AllocationFailed Event), so it is not served: %w",
				p.Port, alloc.IPs, ErrPortNotAllocated))
			continue
		case set.NodePort && p.NodePort == 0:
			b.problem(KindService, key, fmt.Errorf("port %d has no NodePort (allocateLoadBalancerNodePorts: false?) and the backend is nodeport, so it is not served: %w", p.Port, ErrNoNodePort))
			continue
		}
		be := haproxy.Backend{
			Name:    SectionName(svc.Namespace, svc.Name, strconv.Itoa(int(p.Port))),
			Owner:   key,
			Mode:    set.Mode,
			Balance: set.Balance,
			Check:   set.Check,
			ProxyV2: set.ProxyV2,
			Slots:   b.in.Slots,

			ConnectTimeout: set.Timeouts.Connect,
			ServerTimeout:  set.Timeouts.Server,
			TunnelTimeout:  set.Timeouts.Tunnel,
			Affinity:       set.Affinity,
		}
		if set.NodePort {
			be.Servers = b.nodeServers(p.NodePort)
			if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && svc.Spec.HealthCheckNodePort > 0 && svc.Spec.HealthCheckNodePort < 65536 {
				be.Check.Kind = haproxy.CheckHTTP
				be.Check.Path = healthzPath
				be.Check.Host = ""
				be.Check.Port = uint16(svc.Spec.HealthCheckNodePort)
			}
		} else {
			be.Servers = endpointServers(eps, p, bad)
		}
		if len(be.Servers) > haproxy.MaxServers {
			b.problem(KindService, key, fmt.Errorf("port %d has %d endpoints; only the first %d (by address) are served: %w",
				p.Port, len(be.Servers), haproxy.MaxServers, ErrTooManyEndpoints))
			be.Servers = be.Servers[:haproxy.MaxServers]
		}
		bes = append(bes, be)
		for _, ip := range alloc.IPs {
			fe := haproxy.Frontend{
				Name:    SectionName(svc.Namespace, svc.Name, strconv.Itoa(int(p.Port)), ip.String()),
				Owner:   key,
				Bind:    netip.AddrPortFrom(ip, uint16(p.Port)),
				Mode:    set.Mode,
				Backend: be.Name,

				SourceRanges:  set.SourceRanges,
				AcceptProxy:   set.AcceptProxy,
				ClientTimeout: set.Timeouts.Client,
			}
			if set.TLSSecret != "" {
				fe.CertFile = certs.Path(b.in.CertDir, svc.Namespace, set.TLSSecret)
			}
			fes = append(fes, fe)
		}
	}
	if bad.Len() > 0 {
		b.problem(KindService, key, fmt.Errorf("%d endpoint addresses left out, e.g. %v: %w", bad.Len(), bad.First(), ErrEndpoint))
	}
	return fes, bes
}

// protocol is p's protocol with the API's default (TCP) filled in.
func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// granted reports whether the allocation holds port p.
func granted(alloc lbpool.Allocation, p corev1.ServicePort) bool {
	return slices.ContainsFunc(alloc.Ports, func(g lbpool.Port) bool {
		return g.Port == p.Port && protocol(corev1.Protocol(g.Protocol)) == protocol(p.Protocol)
	})
}

// SectionName joins parts with "_" into a HAProxy section name, fitted
// to haproxy.MaxNameLen by haproxy.FitName (a 63-character namespace and
// Service name already need it). A name that stays whole ends in a port or
// an address, never in "_" and 12 hex digits, so whole and fitted names
// never meet; Kubernetes names cannot hold "_", so joined names of
// different Services never meet either.
func SectionName(parts ...string) string {
	return haproxy.FitName(strings.Join(parts, "_"), haproxy.MaxNameLen)
}

// nodeServers returns every Node's InternalIPs at nodePort. Node
// addresses are parsed (and bad ones reported, once per Node) on first use.
func (b *builder) nodeServers(nodePort int32) []haproxy.Server {
	if !b.nodesOK {
		b.nodes, b.nodesOK = b.nodeAddrs(), true
	}
	if nodePort <= 0 || nodePort > 65535 {
		return nil
	}
	out := make([]haproxy.Server, 0, len(b.nodes))
	for _, ip := range b.nodes {
		out = append(out, haproxy.Server{Addr: netip.AddrPortFrom(ip, uint16(nodePort))})
	}
	return haproxy.SortServers(out)
}

func (b *builder) nodeAddrs() []netip.Addr {
	var out []netip.Addr
	for _, n := range b.in.Nodes {
		var bad RefusedAddrs
		out = append(out, NodeInternalIPs(n, &bad)...)
		if bad.Len() > 0 {
			b.problem(KindNode, n.Name, fmt.Errorf("%d InternalIP addresses left out of nodeport backends, e.g. %v: %w", bad.Len(), bad.First(), ErrEndpoint))
		}
	}
	return out
}

// endpointServers returns the port's endpoints (Endpoints' rule) as
// servers, draining ones marked, sorted and each address once (sorted here
// so the model is not copied again to normalise it).
func endpointServers(eps []*discoveryv1.EndpointSlice, p corev1.ServicePort, refused *RefusedAddrs) []haproxy.Server {
	got := Endpoints(eps, p.Name, corev1.ProtocolTCP, refused)
	if len(got) == 0 {
		return nil
	}
	out := make([]haproxy.Server, 0, len(got))
	for _, e := range got {
		out = append(out, haproxy.Server{Addr: e.Addr, Drain: e.Draining})
	}
	return haproxy.SortServers(out)
}
