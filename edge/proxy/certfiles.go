package proxy

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
)

// writeCerts refreshes the PEM files of TLS Secrets the Services name; a
// changed certificate that HAProxy has loaded forces a reload. It fills fps
// with every Service's fingerprint and returns the Services to leave out:
// those whose Secret is missing (never a stale certificate), and those
// whose Secret is unusable and that have no earlier good PEM (with one,
// the old certificate of the still-existing Secret keeps serving and an
// Event is raised).
func (p *Part) writeCerts(svcs []*corev1.Service, fps map[string]string) map[string]error {
	exclude := map[string]error{}
	for _, svc := range svcs {
		key := cache.MetaObjectToName(svc).String()
		fps[key] = svc.ResourceVersion
		set, err := p.settings(svc)
		if err != nil || set.TLSSecret == "" {
			continue
		}
		sec, ok := p.cache.Secret(svc.Namespace, set.TLSSecret)
		if !ok {
			exclude[key] = fmt.Errorf("secret %s/%s not found among the Secrets of type %s; the Service is not served until it exists: %w",
				svc.Namespace, set.TLSSecret, corev1.SecretTypeTLS, certs.ErrSecret)
			continue
		}
		fps[key] += "/" + sec.ResourceVersion
		path, changed, err := certs.Write(p.cfg.HAProxy.CertDir, *sec)
		if changed {
			p.mgr.InvalidateCert(path)
		}
		if err == nil {
			continue
		}
		if _, serr := os.Stat(certs.Path(p.cfg.HAProxy.CertDir, svc.Namespace, set.TLSSecret)); serr == nil {
			p.event(lbconfig.KindService, key, ReasonInvalidTLSSecret, err.Error()+"; the previous certificate of this Secret keeps serving")
			continue
		}
		exclude[key] = err
	}
	return exclude
}

// removeStaleCerts deletes the PEM files that no frontend of model uses
// (a deleted Secret, a Service left out, a removed namespace).
func (p *Part) removeStaleCerts(model haproxy.Model) {
	dir := p.cfg.HAProxy.CertDir
	if dir == "" {
		return
	}
	keep := map[string]bool{}
	for _, f := range model.Frontends {
		if f.CertFile != "" {
			keep[f.CertFile] = true
		}
	}
	removed, err := certs.RemoveStale(dir, keep)
	if err != nil {
		p.log.Warn("stale certificates not removed", "err", err)
	}
	if len(removed) > 0 {
		p.log.Info("removed certificates no Service uses", "files", len(removed))
	}
}
