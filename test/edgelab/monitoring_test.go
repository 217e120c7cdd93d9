package edgelab

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/test/monitoring"
	"github.com/goldentooth/edged/test/testpki"
	"github.com/goldentooth/edged/test/wait"
)

// smallPool replaces PoolRange so a few Services fill it.
const smallPool = "10.77.0.200 - 10.77.0.202"

// smallPoolSize is the number of addresses in smallPool.
const smallPoolSize = 3

// firing counts the firing instances of an alert in a rule test (0 when
// none, thanks to the `or vector(0)`).
func firing(alert string) string {
	return fmt.Sprintf(`count(ALERTS{alertname=%q,alertstate="firing"}) or vector(0)`, alert)
}

// TestDashboardAndRulesLive checks the monitoring files against real
// edged and HAProxy processes: every metric the Grafana dashboard and the
// alert rules reference is in a live scrape of edged or HAProxy's exporter;
// and the pool alerts, evaluated by promtool over the scraped samples, stay
// quiet while the pool has room and fire once more Services than addresses
// exist.
func TestDashboardAndRulesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver, haproxy)")
	}
	refs := monitoring.Referenced(t) // also fails early when promtool is not built
	l := New(t, Options{HAProxy: true, Exporter: true})
	setPoolRange(t, l, smallPool, smallPoolSize)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Two Services of three addresses, one terminating TLS (so the
	// certificate expiry series exists), ARP asked for one (layer2 counters).
	var vips []netip.Addr
	for i := range 2 {
		ip, err := l.CreateService(ctx, fmt.Sprintf("mon-%d", i))
		if err != nil {
			t.Fatalf("%v\n%s", err, l.LogTails(2000))
		}
		vips = append(vips, ip)
	}
	addTLS(ctx, t, l, "mon-0")
	if got, out, err := l.Arping(vips[0], 2); len(got) == 0 {
		t.Fatalf("nobody answers ARP for %s: %v\n%s", vips[0], err, out)
	}

	var names map[string]bool
	if err := wait.Until(60*time.Second, "every referenced metric in the scrapes", func() (bool, string) {
		var err error
		names, _, err = scrapeAll(l, true)
		if err != nil {
			return false, err.Error()
		}
		missing := monitoring.Missing(refs, names)
		return len(missing) == 0, strings.Join(missing, "\n")
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.LogTails(2000))
	}
	t.Logf("%d metrics referenced by the dashboard and the rules, all in the live scrapes", len(refs))

	checks := func(want float64) []monitoring.ExprCheck {
		return []monitoring.ExprCheck{
			{Expr: firing("EdgedAddressPoolExhausted"), EvalTime: "10m", Want: want},
			{Expr: firing("EdgedServiceWithoutIP"), EvalTime: "10m", Want: want},
		}
	}
	// Before: 2 of 3 addresses in use, every Service has its IP.
	_, samples, err := scrapeAll(l, false)
	if err != nil {
		t.Fatal(err)
	}
	monitoring.RunRuleTest(t, "live scrape, pool with room", mustSeries(t, samples), checks(0))

	// Fill: two more Services for the one free address.
	for i := 2; i < 4; i++ {
		svc := lbService(l.Namespace(), fmt.Sprintf("mon-%d", i), corev1.IPv4Protocol)
		if _, err := l.Kube().CoreV1().Services(l.Namespace()).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.Until(60*time.Second, "the pool full and one Service without an IP in every scrape", func() (bool, string) {
		_, samples, err = scrapeAll(l, false)
		if err != nil {
			return false, err.Error()
		}
		inUse, without := 0, 0
		for _, s := range samples {
			switch {
			case s.Name == "metallb_allocator_addresses_in_use_total" && s.Labels["pool"] == "lab" && s.Value == smallPoolSize:
				inUse++
			case s.Name == "edged_services_without_ip" && s.Value == 1:
				without++
			}
		}
		return inUse == len(l.Edges) && without == len(l.Edges), fmt.Sprintf("%d hosts see the pool full, %d one Service without IP", inUse, without)
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.LogTails(2000))
	}
	monitoring.RunRuleTest(t, "live scrape, pool filled", mustSeries(t, samples), checks(1))
}

// setPoolRange sets pool "lab" to rng on every host with a SIGHUP reload
// and waits until the raft state holds size addresses for it.
func setPoolRange(t *testing.T, l *Lab, rng string, size uint64) {
	t.Helper()
	for _, e := range l.Edges {
		b, err := os.ReadFile(e.Config)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), fmt.Sprintf("%q", PoolRange), fmt.Sprintf("%q", rng), 1)
		if s == string(b) {
			t.Fatalf("%s: the pool range %q is not in edged.yaml", e.ID, PoolRange)
		}
		if err := os.WriteFile(e.Config, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Proc().Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.Until(30*time.Second, fmt.Sprintf("pool lab with %d addresses in the raft state", size), func() (bool, string) {
		st, err := l.anyStatus()
		if err != nil {
			return false, err.Error()
		}
		for _, pl := range st.Pools {
			if pl.Name == "lab" {
				return pl.TotalV4 == size, fmt.Sprintf("%+v", pl)
			}
		}
		return false, "no pool lab"
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.LogTails(2000))
	}
}

// addTLS makes Service name terminate TLS with a new self-signed Secret.
func addTLS(ctx context.Context, t *testing.T, l *Lab, name string) {
	t.Helper()
	crt, key := testpki.SelfSigned(t, name+".lab")
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-tls", Namespace: l.Namespace()},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
	if _, err := l.Kube().CoreV1().Secrets(l.Namespace()).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svcs := l.Kube().CoreV1().Services(l.Namespace())
	svc, err := svcs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[lbconfig.AnnTLSSecret] = sec.Name
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// scrapeAll scrapes every running edged (and, with haproxy, every
// HAProxy exporter) and returns the union of series names and edged's
// samples, each labelled with job="edged" and instance=<host>.
func scrapeAll(l *Lab, haproxy bool) (map[string]bool, []monitoring.Sample, error) {
	names := map[string]bool{}
	var samples []monitoring.Sample
	for _, e := range l.Edges {
		urls := []string{"http://" + metricsAddr + "/metrics"}
		if haproxy {
			urls = append(urls, "http://"+ExporterAddr+"/metrics")
		}
		for i, u := range urls {
			body, err := scrape(l, e, u)
			if err != nil {
				return nil, nil, err
			}
			n, s, err := monitoring.Parse(body)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %s: %w", e.ID, u, err)
			}
			maps.Copy(names, n)
			if i > 0 {
				continue // HAProxy's samples are not rule inputs
			}
			for _, x := range s {
				x.Labels["job"], x.Labels["instance"] = "edged", e.ID
				samples = append(samples, x)
			}
		}
	}
	return names, samples, nil
}

func scrape(l *Lab, e *Edge, url string) (string, error) {
	body, err := getBody(l.HTTPVia(e.Host), url)
	if err != nil {
		return "", fmt.Errorf("%s: scrape %s: %w", e.ID, url, err)
	}
	return body, nil
}

// ruleInputs are the metric families the rules under test read.
var ruleInputs = []string{"metallb_allocator_addresses_total", "metallb_allocator_addresses_in_use_total", "edged_services_without_ip"}

// mustSeries turns the scraped samples the rules read into promtool input
// series held for 20 minutes.
func mustSeries(t *testing.T, samples []monitoring.Sample) []map[string]string {
	t.Helper()
	var in []monitoring.Sample
	for _, s := range samples {
		for _, n := range ruleInputs {
			if s.Name == n {
				in = append(in, s)
			}
		}
	}
	series, err := monitoring.InputSeries(in, nil, 20)
	if err != nil {
		t.Fatal(err)
	}
	return series
}
