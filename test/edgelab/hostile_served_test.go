package edgelab

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/goldentooth/edged/haproxy"
)

// checkServed checks, once the hostile objects exist, what each one must
// leave served or left out, through every edge host's own HAProxy. The
// checks run in parallel: each waits up to servedTimeout when it fails.
func (h *tenants) checkServed(t *testing.T, nodesURL string, sharedVIP netip.Addr, gone tlsCert) {
	ns := h.ns
	t.Run("1 no injected line, the Node's good address serves", func(t *testing.T) {
		t.Parallel()
		if p := h.injected(); p != "" {
			t.Error(p)
		}
		if err := h.waitServed(nodesURL, "via-nodes"); err != nil {
			t.Error(err)
		}
	})
	t.Run("2 63-character names served", func(t *testing.T) {
		t.Parallel()
		svc63 := longName("svc", maxLabel)
		if err := h.waitServed("http://"+VIPAddr(h.waitIP(t, h.longNS, svc63), 80)+"/", "long-names"); err != nil {
			t.Error(err)
		}
	})
	t.Run("3 253-character Secret name: TLS served", func(t *testing.T) {
		t.Parallel()
		addr := VIPAddr(h.waitIP(t, ns, "long-secret"), 443)
		if err := h.waitTLS(addr, h.longCert.certDER, "long-secret"); err != nil {
			t.Error(err)
		}
	})
	t.Run("4 zoned requested IPs get no address", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"zoned-ip", "zoned-ip6"} {
			if ips, err := h.ingress(ns, name); err != nil || len(ips) > 0 {
				t.Errorf("%s: ingress %v (%v), want none", name, ips, err)
			}
		}
	})
	t.Run("6 shared VIP:80 reaches only tenant X", func(t *testing.T) {
		t.Parallel()
		if err := h.waitServed("http://"+VIPAddr(sharedVIP, 80)+"/", "shared-a"); err != nil {
			t.Error(err)
		}
	})
	t.Run("7 deleted Secret: Service left out, PEM gone", func(t *testing.T) {
		t.Parallel()
		if err := h.waitRefused(gone.addr); err != nil {
			t.Error(err)
		}
		for _, e := range h.l.Edges {
			if files, err := pemFiles(e, gone.certPEM); err != nil || len(files) > 0 {
				t.Errorf("%s: the deleted Secret's certificate is still in %s: %v (%v)", e.ID, e.CertDir(), files, err)
			}
		}
	})
	t.Run("10 2,000 endpoints served with the cap", func(t *testing.T) {
		t.Parallel()
		if err := h.waitListening(VIPAddr(h.waitIP(t, ns, "many-endpoints"), 80)); err != nil {
			t.Error(err)
		}
		if err := h.everyHost("many-endpoints' live servers", func(e *Edge) (bool, string) {
			n, err := liveServers(e, func(s haproxy.ServerState) bool { return manyPrefix.Contains(s.Addr.Addr()) })
			return err == nil && n == haproxy.MaxServers, fmt.Sprintf("%d live (%v)", n, err)
		}); err != nil {
			t.Errorf("want %d servers (haproxy.MaxServers): %v", haproxy.MaxServers, err)
		}
	})
	t.Run("11 bad annotation: left out", func(t *testing.T) {
		t.Parallel()
		if err := h.waitRefused(VIPAddr(h.waitIP(t, ns, "bad-annotation"), 80)); err != nil {
			t.Error(err)
		}
	})
	t.Run("12 only the good endpoint serves", func(t *testing.T) {
		t.Parallel()
		if err := h.waitServed("http://"+VIPAddr(h.waitIP(t, ns, "bad-endpoints"), 80)+"/", "bad-endpoints"); err != nil {
			t.Error(err)
		}
	})
}
