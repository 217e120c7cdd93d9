package edgelab

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/test/wait"
)

// Bounds of the checks. Each is a wait for something edged does within
// a second or two when it works, with room for a loaded 2-core machine.
const (
	// servedTimeout bounds the wait for a Service to be served (or left
	// out) on every host: one deadline for all hosts together.
	servedTimeout = 15 * time.Second
	// roundN requests through one host must all be answered by the
	// expected pods before a Service counts as served.
	roundN = 4
	// sampleN requests through every host, after that, must all be
	// answered by the expected pods: with two listeners on one VIP:port
	// the kernel spreads connections over both, so 2^-20 is the chance a
	// hijack goes unseen.
	sampleN = 20
)

// client returns a cached HTTPVia client for e.
func (h *tenants) client(e *Edge) *http.Client {
	h.viaMu.Lock()
	defer h.viaMu.Unlock()
	if h.via == nil {
		h.via = map[*Edge]*http.Client{}
	}
	c, ok := h.via[e]
	if !ok {
		c = h.l.HTTPVia(e.Host)
		h.via[e] = c
	}
	return c
}

// get fetches url through e's own HAProxy and returns the body.
func (h *tenants) get(e *Edge, url string) (string, error) {
	resp, err := h.client(e).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %.60q", url, resp.Status, b)
	}
	return string(b), nil
}

// round sends n requests to url through e and describes the answers that
// are not from want ("" when all are).
func (h *tenants) round(e *Edge, url string, n int, want []string) string {
	var bad []string
	for range n {
		body, err := h.get(e, url)
		switch {
		case err != nil:
			bad = append(bad, err.Error())
		case !slices.Contains(want, body):
			bad = append(bad, fmt.Sprintf("answered by %.60q", body))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%s via %s: %d of %d not from %v, first: %s", url, e.ID, len(bad), n, want, bad[0])
}

// everyHost waits until cond holds for every edge host, within one
// servedTimeout for all of them.
func (h *tenants) everyHost(what string, cond func(e *Edge) (bool, string)) error {
	deadline := time.Now().Add(servedTimeout)
	for _, e := range h.l.Edges {
		if err := wait.Until(time.Until(deadline), what+" via "+e.ID, func() (bool, string) { return cond(e) }); err != nil {
			return err
		}
	}
	return nil
}

// waitServed waits until url answers from want through every edge host's
// HAProxy, then checks a sample of sampleN requests per host.
func (h *tenants) waitServed(url string, want ...string) error {
	if err := h.everyHost(url, func(e *Edge) (bool, string) {
		msg := h.round(e, url, roundN, want)
		return msg == "", msg
	}); err != nil {
		return err
	}
	for _, e := range h.l.Edges {
		if msg := h.round(e, url, sampleN, want); msg != "" {
			return fmt.Errorf("after it was served: %s", msg)
		}
	}
	return nil
}

// waitRefused waits until a connection to addr is refused through every
// edge host: no frontend binds it.
func (h *tenants) waitRefused(addr string) error {
	return h.everyHost(addr+" refused", func(e *Edge) (bool, string) {
		c, err := h.l.DialVia(context.Background(), e.Host, addr)
		if err != nil {
			return strings.Contains(err.Error(), "connection refused"), err.Error()
		}
		c.Close()
		return false, "a frontend accepted the connection"
	})
}

// waitListening waits until addr accepts a connection through every edge
// host (a frontend binds it).
func (h *tenants) waitListening(addr string) error {
	return h.everyHost(addr+" accepted", func(e *Edge) (bool, string) {
		c, err := h.l.DialVia(context.Background(), e.Host, addr)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// waitTLS waits until https://addr/ presents certDER and is answered by
// want through every edge host.
func (h *tenants) waitTLS(addr string, certDER []byte, want string) error {
	url := "https://" + addr + "/"
	return h.everyHost(url, func(e *Edge) (bool, string) {
		resp, err := h.client(e).Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, certDER) {
			return false, "another certificate: " + peerCN(resp.TLS)
		}
		return string(b) == want, fmt.Sprintf("answered by %.60q", b)
	})
}

func peerCN(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return "none"
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

// pemFiles returns the files in e's certDir that hold certPEM.
func pemFiles(e *Edge, certPEM []byte) ([]string, error) {
	ents, err := os.ReadDir(e.CertDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(e.CertDir(), ent.Name()))
		if err == nil && bytes.Contains(b, bytes.TrimSpace(certPEM)) {
			out = append(out, ent.Name())
		}
	}
	return out, nil
}

// liveServers counts the servers of e's HAProxy that are up (running, not
// in maintenance) and whose address is accepted by in.
func liveServers(e *Edge, in func(haproxy.ServerState) bool) (int, error) {
	stats := e.HAProxyPaths().Stats
	stats.Timeout = 10 * time.Second
	reply, err := stats.Command(context.Background(), "show servers state")
	if err != nil {
		return 0, err
	}
	rows, err := haproxy.ParseServersState(reply)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		if r.Up() && in(r) {
			n++
		}
	}
	return n, nil
}

// warnings returns every Warning Event in the cluster by involvedObject
// (kind/namespace/name).
func (h *tenants) warnings() (map[string][]corev1.Event, error) {
	list, err := h.kc.CoreV1().Events("").List(h.ctx, metav1.ListOptions{FieldSelector: "type=" + corev1.EventTypeWarning})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Event{}
	for _, ev := range list.Items {
		o := ev.InvolvedObject
		k := o.Kind + "/" + o.Namespace + "/" + o.Name
		out[k] = append(out[k], ev)
	}
	return out, nil
}

func (x expectation) key() string { return x.kind + "/" + x.ns + "/" + x.name }

// missing lists the expectations whose Event is not there yet.
func missing(exp []expectation, got map[string][]corev1.Event) []string {
	var out []string
	for _, x := range exp {
		if len(x.reasons) == 0 {
			continue
		}
		found := false
		for _, ev := range got[x.key()] {
			found = found || slices.Contains(x.reasons, ev.Reason)
		}
		if !found {
			out = append(out, x.what)
		}
	}
	return out
}

func reasons(evs []corev1.Event) []string {
	var out []string
	for _, ev := range evs {
		if !slices.Contains(out, ev.Reason) {
			out = append(out, ev.Reason)
		}
	}
	sort.Strings(out)
	return out
}

// syncMap guards the per-host clients of tenants.
type syncMap struct {
	viaMu sync.Mutex
	via   map[*Edge]*http.Client
}
