package haproxylab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goldentooth/edged/edge/proxy"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/test/testpki"
	"github.com/goldentooth/edged/test/wait"
)

// httpChecked are the annotations of an HTTP Service with fast HTTP checks
// on the pods' /healthz.
func httpChecked() map[string]string {
	return map[string]string{
		lbconfig.AnnMode:          "http",
		lbconfig.AnnCheck:         "http",
		lbconfig.AnnCheckPath:     "/healthz",
		lbconfig.AnnCheckInterval: "200ms",
		lbconfig.AnnCheckRise:     "1",
		lbconfig.AnnCheckFall:     "2",
	}
}

// TestLab runs edged's HAProxy path end to end in namespaces: one lab,
// subtests in order, each building on the previous state. Throughout, the
// operator's own frontend (in their haproxy.cfg) is under load and must
// not fail once.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, network namespaces, haproxy and the test kube-apiserver")
	}
	e := newEnv(t)
	e.startPart(t)
	stop := make(chan struct{})
	op := e.startOperatorLoad(stop)
	defer func() {
		close(stop)
		<-op.done
		if n := op.failed.Load(); n > 0 {
			t.Errorf("operator frontend: %d of %d requests failed (last: %v)", n, n+op.ok.Load(), op.lastErr.Load())
		} else {
			t.Logf("operator frontend: %d requests, 0 failed", op.ok.Load())
		}
	}()

	a, b, c := e.startPod(t, "a"), e.startPod(t, "b"), e.startPod(t, "c")
	var web string // http://VIP:80/
	ok := t.Run("traffic reaches endpoints", func(t *testing.T) {
		e.service(t, "web", 80, httpChecked())
		e.setEndpoints(t, "web", endpoint{a, true}, endpoint{b, true})
		web = fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.vip(t, "web"), 80))
		e.waitServes(t, web, a, b)
	})
	if !ok {
		t.FailNow()
	}

	t.Run("endpoint changes without reload", func(t *testing.T) {
		r0 := e.reloads(t)
		e.setEndpoints(t, "web", endpoint{a, true}, endpoint{b, true}, endpoint{c, true})
		e.waitServes(t, web, a, b, c)
		e.setEndpoints(t, "web", endpoint{b, true}, endpoint{c, true})
		e.waitServes(t, web, b, c)
		e.setEndpoints(t, "web", endpoint{b, false}, endpoint{c, true})
		e.waitServes(t, web, c)
		e.setEndpoints(t, "web", endpoint{b, true}, endpoint{c, true})
		e.waitServes(t, web, b, c)
		if r := e.reloads(t); r != r0 {
			t.Errorf("reload counter moved from %d to %d on endpoint changes", r0, r)
		}
	})

	t.Run("failing health check takes a server out", func(t *testing.T) {
		r0 := e.reloads(t)
		c.stop() // still Ready in its EndpointSlice
		e.waitServes(t, web, b)
		if up, err := e.serverUp(e.backendName("web", 80), c.addr); err != nil || up {
			t.Errorf("stopped pod %s: up=%v err=%v, want down", c.addr, up, err)
		}
		// A pod whose health endpoint fails is taken out as well.
		b.healthy.Store(false)
		e.setEndpoints(t, "web", endpoint{a, true}, endpoint{b, true})
		e.waitServes(t, web, a)
		b.healthy.Store(true)
		e.waitServes(t, web, a, b)
		if r := e.reloads(t); r != r0 {
			t.Errorf("reload counter moved from %d to %d", r0, r)
		}
	})

	secPod := e.startPod(t, "s")
	var secure netip.AddrPort
	t.Run("TLS termination serves the Secret's certificate", func(t *testing.T) {
		cert1, key1 := testpki.SelfSigned(t, "secure-v1")
		e.tlsSecret(t, "secure-tls", cert1, key1, false)
		ann := httpChecked()
		ann[lbconfig.AnnTLSSecret] = "secure-tls"
		e.service(t, "secure", 443, ann)
		e.setEndpoints(t, "secure", endpoint{secPod, true})
		secure = netip.AddrPortFrom(e.vip(t, "secure"), 443)
		e.waitCert(t, secure, cert1)
		e.waitServes(t, "https://"+secure.String()+"/", secPod)
		if fi, err := os.Stat(certs.Path(e.cfg.HAProxy.CertDir, e.ns, "secure-tls")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("PEM file: %v, mode %v; want 0600", err, fi.Mode().Perm())
		}

		// A rotation is served as soon as the watch delivers it (a reload):
		// well under the 10 s the Secrets were once polled at.
		cert2, key2 := testpki.SelfSigned(t, "secure-v2")
		rotated := time.Now()
		e.tlsSecret(t, "secure-tls", cert2, key2, true)
		e.waitCert(t, secure, cert2)
		if d := time.Since(rotated); d > 5*time.Second {
			t.Errorf("rotated certificate served after %v, want within 5 s", d)
		} else {
			t.Logf("rotated certificate served %v after the Secret update", d.Round(time.Millisecond))
		}
		e.waitServes(t, "https://"+secure.String()+"/", secPod)
		e.waitServes(t, web, a, b)
	})

	t.Run("bad annotation gives an Event, others keep serving", func(t *testing.T) {
		ann := httpChecked()
		ann[lbconfig.AnnCheckInterval] = "1ms"
		e.service(t, "bad", 80, ann)
		e.setEndpoints(t, "bad", endpoint{a, true})
		msg := e.waitEvent(t, "bad", proxy.ReasonInvalidAnnotation)
		if !strings.Contains(msg, lbconfig.AnnCheckInterval) {
			t.Errorf("event message %q does not name %s", msg, lbconfig.AnnCheckInterval)
		}
		badVIP := netip.AddrPortFrom(e.vip(t, "bad"), 80)
		if _, err := e.get("http://" + badVIP.String() + "/"); err == nil {
			t.Errorf("Service with a bad annotation is served on %s", badVIP)
		}
		e.waitServes(t, web, a, b)
		e.waitServes(t, "https://"+secure.String()+"/", secPod)
		// Fixing the annotation brings it in.
		e.updateService(t, "bad", func(s *corev1.Service) { s.Annotations[lbconfig.AnnCheckInterval] = "200ms" })
		e.waitServes(t, "http://"+badVIP.String()+"/", a)
	})

	t.Run("unusable TLS Secret gives an Event, others keep serving", func(t *testing.T) {
		r0 := e.reloads(t)
		e.tlsSecret(t, "junk-tls", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
			[]byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), false)
		ann := httpChecked()
		ann[lbconfig.AnnTLSSecret] = "junk-tls"
		e.service(t, "junk", 443, ann)
		e.setEndpoints(t, "junk", endpoint{a, true})
		e.waitEvent(t, "junk", proxy.ReasonInvalidTLSSecret)
		if _, err := e.dialTLS(netip.AddrPortFrom(e.vip(t, "junk"), 443)); err == nil {
			t.Error("Service with an unusable Secret is served")
		}
		e.waitServes(t, web, a, b)
		e.waitServes(t, "https://"+secure.String()+"/", secPod)
		if r := e.reloads(t); r != r0 {
			t.Errorf("reload counter moved from %d to %d", r0, r)
		}
	})

	t.Run("broken render is never loaded", func(t *testing.T) {
		r0 := e.reloads(t)
		v0 := e.failures(t, "validate")
		// An RSA-1024 pair passes the apiserver, every annotation check and
		// Go's tls.X509KeyPair, but OpenSSL 3 (security level 2) refuses it:
		// only `haproxy -c` sees the problem.
		cert, key := weakPair(t, "broken-weak")
		e.tlsSecret(t, "broken-tls", cert, key, false)
		ann := httpChecked()
		ann[lbconfig.AnnTLSSecret] = "broken-tls"
		e.service(t, "broken", 443, ann)
		e.setEndpoints(t, "broken", endpoint{a, true})
		broken := netip.AddrPortFrom(e.vip(t, "broken"), 443)
		wait.For(t, waitTimeout, "validation failure counted", func() (bool, string) {
			v := e.failures(t, "validate")
			return v > v0, fmt.Sprint(v)
		})
		msg := e.waitEvent(t, "broken", proxy.ReasonHAProxyConfigInvalid)
		t.Logf("event: %s", msg)
		cfg, err := os.ReadFile(e.paths.Config)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cfg), "_broken_") {
			t.Errorf("live edged.cfg contains the broken Service:\n%s", cfg)
		}
		if r := e.reloads(t); r != r0 {
			t.Errorf("reload counter moved from %d to %d", r0, r)
		}
		if _, err := e.dialTLS(broken); err == nil {
			t.Errorf("broken Service is served on %s", broken)
		}
		e.waitServes(t, web, a, b)
		e.waitServes(t, "https://"+secure.String()+"/", secPod)
		// Endpoint and structural changes of other Services still go live.
		e.setEndpoints(t, "web", endpoint{b, true})
		e.waitServes(t, web, b)
		e.service(t, "later", 80, httpChecked())
		e.setEndpoints(t, "later", endpoint{a, true})
		e.waitServes(t, fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.vip(t, "later"), 80)), a)
		// Fixing the Secret brings the Service in.
		good, goodKey := testpki.SelfSigned(t, "broken-fixed")
		e.tlsSecret(t, "broken-tls", good, goodKey, true)
		e.waitCert(t, broken, good)
		e.waitServes(t, "https://"+broken.String()+"/", a)
	})
}

// weakPair returns a self-signed RSA-1024 certificate and key.
func weakPair(t testing.TB, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})); err != nil {
		t.Fatalf("Go refuses the weak pair (the test needs one only HAProxy refuses): %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// updateService applies mutate to the latest Service.
func (e *env) updateService(t testing.TB, name string, mutate func(*corev1.Service)) {
	t.Helper()
	ctx := context.Background()
	var err error
	for range 10 {
		var s *corev1.Service
		if s, err = e.admin.CoreV1().Services(e.ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		mutate(s)
		if _, err = e.admin.CoreV1().Services(e.ns).Update(ctx, s, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
	t.Fatalf("update service %s: %v", name, err)
}

// tlsSecret creates (or updates) a kubernetes.io/tls Secret.
func (e *env) tlsSecret(t testing.TB, name string, cert, key []byte, update bool) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
	}
	api := e.admin.CoreV1().Secrets(e.ns)
	var err error
	if update {
		_, err = api.Update(context.Background(), s, metav1.UpdateOptions{})
	} else {
		_, err = api.Create(context.Background(), s, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("secret %s: %v", name, err)
	}
}

// dialTLS opens a TLS connection from the client namespace and returns the
// server's leaf certificate (DER).
func (e *env) dialTLS(addr netip.AddrPort) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	raw, err := e.dial(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // compared below
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", addr)
	}
	return certs[0].Raw, nil
}

// waitCert waits until addr serves exactly the certificate in certPEM.
func (e *env) waitCert(t testing.TB, addr netip.AddrPort, certPEM []byte) {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("bad test certificate")
	}
	wait.For(t, waitTimeout, "certificate on "+addr.String(), func() (bool, string) {
		der, err := e.dialTLS(addr)
		if err != nil {
			return false, err.Error()
		}
		if !bytes.Equal(der, blk.Bytes) {
			got, _ := x509.ParseCertificate(der)
			if got != nil {
				return false, "serving CN=" + got.Subject.CommonName
			}
			return false, "serving another certificate"
		}
		return true, ""
	})
}
