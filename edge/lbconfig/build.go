package lbconfig

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goldentooth/edged/haproxy"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Input is everything Build needs.
type Input struct {
	// Services are all Services; only type LoadBalancer with an allocation render.
	Services []corev1.Service
	// Slices are all EndpointSlices (matched by kubernetes.io/service-name).
	Slices []discoveryv1.EndpointSlice
	// Nodes supply InternalIPs in nodeport mode.
	Nodes []corev1.Node
	// Allocations maps "namespace/name" to the Service's VIPs.
	Allocations map[string][]netip.Addr
	// NodePort makes nodeport the default backend mode.
	NodePort bool
	// CertDir is where WriteTLSSecret puts PEM files.
	CertDir string
	// Slots is the number of server slots per backend (haproxy.serverSlots);
	// zero means haproxy.DefaultSlots. More endpoints still fit (rounded up).
	Slots int
	// Stats is copied into the model.
	Stats *haproxy.Stats
	// Exclude leaves these Services ("namespace/name") out with the given
	// error (e.g. one whose render HAProxy refused, or whose TLS Secret is
	// missing or unusable); each is reported like a bad annotation.
	Exclude map[string]error
}

// ServiceError is a problem with one Service; the caller raises an Event.
type ServiceError struct {
	// Key is "namespace/name".
	Key string
	// Err wraps ErrAnnotation.
	Err error
}

// Error implements error.
func (e ServiceError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e ServiceError) Unwrap() error { return e.Err }

// healthzPath is kube-proxy's health check path on healthCheckNodePort.
const healthzPath = "/healthz"

// Build returns the desired model. A Service with a bad annotation is left
// out and reported; every other Service still renders.
func Build(in Input) (haproxy.Model, []ServiceError) {
	m := haproxy.Model{Stats: in.Stats}
	var errs []ServiceError
	svcs := make([]*corev1.Service, len(in.Services))
	for i := range in.Services {
		svcs[i] = &in.Services[i]
	}
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	bySvc := slicesByService(in.Slices)
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		vips := in.Allocations[key]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(vips) == 0 {
			continue
		}
		if err, ok := in.Exclude[key]; ok {
			errs = append(errs, ServiceError{Key: key, Err: err})
			continue
		}
		set, err := ParseAnnotations(svc.Annotations, in.NodePort)
		if err != nil {
			errs = append(errs, ServiceError{Key: key, Err: err})
			continue
		}
		fes, bes := service(in, svc, bySvc[key], set, vips)
		m.Frontends = append(m.Frontends, fes...)
		m.Backends = append(m.Backends, bes...)
	}
	return m, errs
}

// slicesByService indexes EndpointSlices by "namespace/service name", so
// a build looks at each slice once, not once per Service port.
func slicesByService(all []discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := make(map[string][]*discoveryv1.EndpointSlice, len(all))
	for i := range all {
		es := &all[i]
		if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
			k := es.Namespace + "/" + name
			out[k] = append(out[k], es)
		}
	}
	return out
}

func service(in Input, svc *corev1.Service, eps []*discoveryv1.EndpointSlice, set Settings, vips []netip.Addr) ([]haproxy.Frontend, []haproxy.Backend) {
	var fes []haproxy.Frontend
	var bes []haproxy.Backend
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue // HAProxy proxies TCP only
		}
		be := haproxy.Backend{
			Name:    fmt.Sprintf("%s_%s_%d", svc.Namespace, svc.Name, p.Port),
			Mode:    set.Mode,
			Balance: set.Balance,
			Check:   set.Check,
			ProxyV2: set.ProxyV2,
			Slots:   in.Slots,
		}
		if set.NodePort {
			be.Servers = nodeServers(in.Nodes, p.NodePort)
			if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && svc.Spec.HealthCheckNodePort != 0 {
				be.Check.Kind = haproxy.CheckHTTP
				be.Check.Path = healthzPath
				be.Check.Host = ""
				be.Check.Port = uint16(svc.Spec.HealthCheckNodePort)
			}
		} else {
			be.Servers = endpointServers(eps, p)
		}
		bes = append(bes, be)
		for _, ip := range vips {
			fe := haproxy.Frontend{
				Name:    be.Name + "_" + ip.String(),
				Bind:    netip.AddrPortFrom(ip, uint16(p.Port)),
				Mode:    set.Mode,
				Backend: be.Name,
			}
			if set.TLSSecret != "" {
				fe.CertFile = CertPath(in.CertDir, svc.Namespace, set.TLSSecret)
			}
			fes = append(fes, fe)
		}
	}
	return fes, bes
}

// ServiceKey returns the Service ("namespace/name") a frontend or backend
// section rendered by Build belongs to. Section names are
// <namespace>_<name>_<port>[_<vip>]; Kubernetes names cannot hold "_".
func ServiceKey(section string) (string, bool) {
	f := strings.Split(section, "_")
	if len(f) < 3 || f[0] == "" || f[1] == "" {
		return "", false
	}
	if _, err := strconv.ParseUint(f[2], 10, 16); err != nil {
		return "", false
	}
	return f[0] + "/" + f[1], true
}

// CertPath is where WriteTLSSecret stores a Secret's PEM.
func CertPath(certDir, namespace, secret string) string {
	return filepath.Join(certDir, namespace+"_"+secret+".pem")
}

func nodeServers(nodes []corev1.Node, nodePort int32) []haproxy.Server {
	if nodePort == 0 {
		return nil
	}
	var out []haproxy.Server
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, haproxy.Server{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(nodePort))})
			}
		}
	}
	return out
}

// endpointServers returns ready endpoints, plus serving-but-terminating
// ones as draining servers, for one Service port of the Service that owns
// eps; sorted by address, each address once (haproxy.Model's normal form,
// so the model is not copied again to normalise it).
func endpointServers(eps []*discoveryv1.EndpointSlice, p corev1.ServicePort) []haproxy.Server {
	n := 0
	for _, es := range eps {
		for _, ep := range es.Endpoints {
			n += len(ep.Addresses)
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]haproxy.Server, 0, n)
	for _, es := range eps {
		port := slicePort(es, p)
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			ready := c.Ready == nil || *c.Ready
			draining := !ready && c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
			if !ready && !draining {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					out = append(out, haproxy.Server{Addr: netip.AddrPortFrom(ip.Unmap(), port), Drain: draining})
				}
			}
		}
	}
	return haproxy.SortServers(out)
}

// slicePort finds the slice port for a Service port (matched by name, as
// the EndpointSlice controller names them).
func slicePort(es *discoveryv1.EndpointSlice, p corev1.ServicePort) uint16 {
	for _, sp := range es.Ports {
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		if name == p.Name && sp.Port != nil && *sp.Port > 0 && *sp.Port < 65536 {
			return uint16(*sp.Port)
		}
	}
	return 0
}
