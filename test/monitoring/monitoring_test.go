package monitoring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesCheck: promtool accepts the rule file and the scrape example.
func TestRulesCheck(t *testing.T) {
	dir := filepath.Join(Root(t), "configs", "prometheus")
	if out, err := Promtool(t, dir, "check", "rules", "edged-rules.yaml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := Promtool(t, dir, "check", "config", "--syntax-only", "scrape.yaml"); err != nil {
		t.Fatalf("promtool check config scrape.yaml: %v\n%s", err, out)
	}
}

// TestRulesUnit runs the rule unit tests (Prometheus's rule-test format).
func TestRulesUnit(t *testing.T) {
	dir := filepath.Join(Root(t), "configs", "prometheus")
	out, err := Promtool(t, dir, "test", "rules", filepath.Base(RuleTestsFile))
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

// TestRuleUnitTestsCanFail: a rule test whose expectation is wrong fails,
// so TestRulesUnit's pass means something.
func TestRuleUnitTestsCanFail(t *testing.T) {
	series := []map[string]string{
		{"series": `metallb_allocator_addresses_total{instance="e1",job="edged",pool="p"}`, "values": "4x10"},
		{"series": `metallb_allocator_addresses_in_use_total{instance="e1",job="edged",pool="p"}`, "values": "1x10"},
	}
	ft := &failRecorder{TB: t}
	RunRuleTest(ft, "a pool a quarter full is not exhausted", series, []ExprCheck{{
		Expr: `count(ALERTS{alertname="EdgedAddressPoolExhausted",alertstate="firing"}) or vector(0)`, EvalTime: "5m", Want: 1,
	}})
	if !ft.failed {
		t.Fatal("a wrong expectation passed promtool test rules")
	}
	RunRuleTest(t, "a pool a quarter full is not exhausted", series, []ExprCheck{{
		Expr: `count(ALERTS{alertname="EdgedAddressPoolExhausted",alertstate="firing"}) or vector(0)`, EvalTime: "5m", Want: 0,
	}})
}

// failRecorder records Errorf instead of failing the test.
type failRecorder struct {
	testing.TB
	failed bool
}

func (f *failRecorder) Errorf(string, ...any) { f.failed = true }

// TestDashboardParses: every dashboard query and rule expression parses as
// PromQL and references a metric, and every metric they reference is
// documented in docs/metrics.md (edged's or HAProxy's). That each exists
// in a real scrape is TestDashboardAndRulesLive in test/edgelab.
func TestDashboardParses(t *testing.T) {
	refs := Referenced(t)
	if len(refs) == 0 {
		t.Fatal("no metric referenced")
	}
	doc, err := os.ReadFile(filepath.Join(Root(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for m := range refs {
		base := strings.TrimSuffix(m, "_bucket")
		if !strings.Contains(string(doc), "`"+base+"`") {
			t.Errorf("%s is used by %v but not documented in docs/metrics.md", m, refs[m])
		}
	}
}

// TestParseSeesHistograms: the scrape parser offers a histogram's series
// names, as a query selects them.
func TestParseSeesHistograms(t *testing.T) {
	names, samples, err := Parse("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n# TYPE g gauge\ng{pool=\"a\"} 3\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"h_bucket", "h_sum", "h_count", "g"} {
		if !names[n] {
			t.Errorf("%s missing from %v", n, names)
		}
	}
	if len(samples) != 1 || samples[0].Name != "g" || samples[0].Value != 3 || samples[0].Labels["pool"] != "a" {
		t.Errorf("samples = %+v", samples)
	}
}
