package certs

import (
	"crypto/x509"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// expiry is when each written certificate expires, by the Secret it came
// from: what the TLSCertificateExpiresSoon alert (configs/prometheus)
// reads. A series lives as long as its file: RemoveStale drops it.
var expiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "edged", Subsystem: "tls", Name: "certificate_expiration_timestamp_seconds",
	Help: "When the certificate HAProxy serves from a Service's TLS Secret expires (notAfter, Unix seconds), by the Secret's namespace and name.",
}, []string{"namespace", "secret"})

// files maps a PEM path to its expiry series' labels.
var (
	filesMu sync.Mutex
	files   = map[string][2]string{}
)

// Collectors returns the package's collectors for registration by the caller.
func Collectors() []prometheus.Collector { return []prometheus.Collector{expiry} }

// noteExpiry records the expiry of the certificate written to path.
func noteExpiry(path, namespace, secret string, leaf *x509.Certificate) {
	if leaf == nil {
		return
	}
	filesMu.Lock()
	defer filesMu.Unlock()
	files[path] = [2]string{namespace, secret}
	expiry.WithLabelValues(namespace, secret).Set(float64(leaf.NotAfter.Unix()))
}

// forgetExpiry drops the series of a removed file.
func forgetExpiry(path string) {
	filesMu.Lock()
	defer filesMu.Unlock()
	if l, ok := files[path]; ok {
		expiry.DeleteLabelValues(l[0], l[1])
		delete(files, path)
	}
}
