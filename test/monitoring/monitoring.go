// Package monitoring checks the shipped monitoring files against
// Prometheus's own tools: configs/prometheus/edged-rules.yaml with promtool
// (check rules, the unit tests in Prometheus's rule-test format), and every
// PromQL query of configs/grafana/edged-dashboard.json with Prometheus's
// parser. Both tools come from the nested module test/promtool (make
// promtool builds them into test/promtool/bin; Prometheus's module never
// enters edged's go.mod). The lab test in test/edgelab uses the same
// helpers against a running edged and its HAProxy.
package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/goldentooth/edged/test/kubetest"
)

// Files of the repository, relative to its root.
const (
	RulesFile     = "configs/prometheus/edged-rules.yaml"
	RuleTestsFile = "configs/prometheus/edged-rules.test.yaml"
	DashboardFile = "configs/grafana/edged-dashboard.json"
	toolsDir      = "test/promtool/bin"
)

// Root is the repository root.
func Root(t testing.TB) string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Tool returns the path of promtool or promqlrefs in test/promtool/bin;
// the test fails, saying how to build it, when it is missing (and skips
// with -short, which runs no external binary).
func Tool(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs test/promtool/bin (make promtool)")
	}
	p := filepath.Join(Root(t), toolsDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s missing: run make promtool (test/promtool/build.sh): %v", p, err)
	}
	return p
}

// Promtool runs promtool with args in dir and returns its combined output.
func Promtool(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Tool(t, "promtool"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// grafanaVars are Grafana's interval variables, replaced by a duration
// before parsing (they are not PromQL).
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// DashboardExprs returns every query of the dashboard, with Grafana's
// interval variables replaced, and the title of its panel.
func DashboardExprs(t testing.TB) (exprs, panels []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", DashboardFile, err)
	}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", DashboardFile, p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, grafanaVars.Replace(q.Expr))
			panels = append(panels, p.Title)
		}
	}
	return exprs, panels
}

// RuleExprs returns every rule's expression and its alert (or record) name.
func RuleExprs(t testing.TB) (exprs, names []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", RulesFile, err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			names = append(names, r.Alert+r.Record)
		}
	}
	return exprs, names
}

// Ref is promqlrefs' answer for one expression.
type Ref struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error"`
	Metrics []string `json:"metrics"`
}

// Refs parses exprs with Prometheus's parser (promqlrefs) and returns the
// metric names each references.
func Refs(t testing.TB, exprs []string) []Ref {
	t.Helper()
	in, err := json.Marshal(exprs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Tool(t, "promqlrefs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("promqlrefs: %v\n%s", err, stderr.String())
	}
	var refs []Ref
	if err := json.Unmarshal(out, &refs); err != nil {
		t.Fatalf("promqlrefs output: %v", err)
	}
	if len(refs) != len(exprs) {
		t.Fatalf("promqlrefs answered %d of %d expressions", len(refs), len(exprs))
	}
	return refs
}

// Referenced returns every metric name the dashboard and the rules
// reference, sorted, with where each is used. An expression that does not
// parse fails the test.
func Referenced(t testing.TB) map[string][]string {
	t.Helper()
	dExprs, panels := DashboardExprs(t)
	rExprs, rules := RuleExprs(t)
	where := append(append([]string{}, prefix("dashboard panel ", panels)...), prefix("rule ", rules)...)
	out := map[string][]string{}
	for i, r := range Refs(t, append(dExprs, rExprs...)) {
		if r.Error != "" {
			t.Errorf("%s: %q does not parse: %s", where[i], r.Expr, r.Error)
			continue
		}
		if len(r.Metrics) == 0 {
			t.Errorf("%s: %q references no metric", where[i], r.Expr)
		}
		for _, m := range r.Metrics {
			out[m] = append(out[m], where[i])
		}
	}
	return out
}

func prefix(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// Sample is one scraped series: its name, labels and value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Parse reads a Prometheus text exposition. names holds every series name
// a query can select: a histogram's _bucket, _sum and _count, a summary's
// _sum and _count besides the family name.
func Parse(body string) (names map[string]bool, samples []Sample, err error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("parse exposition: %w", err)
	}
	names = map[string]bool{}
	for name, f := range fams {
		names[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "SUMMARY":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
		for _, m := range f.GetMetric() {
			s := Sample{Name: name, Labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.Labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.Gauge != nil:
				s.Value = m.GetGauge().GetValue()
			case m.Counter != nil:
				s.Value = m.GetCounter().GetValue()
			case m.Untyped != nil:
				s.Value = m.GetUntyped().GetValue()
			default:
				continue // histograms and summaries: not needed as input series
			}
			samples = append(samples, s)
		}
	}
	return names, samples, nil
}

// Missing returns the referenced names (Referenced) that no scrape in
// names holds, sorted, each with where it is used.
func Missing(refs map[string][]string, names map[string]bool) []string {
	var out []string
	for m, where := range refs {
		if !names[m] {
			out = append(out, fmt.Sprintf("%s (used by %s)", m, strings.Join(where, "; ")))
		}
	}
	sort.Strings(out)
	return out
}

// seriesRE is what a label value may hold in a promtool series string
// without escaping (scraped values are checked against it).
var seriesRE = regexp.MustCompile(`^[A-Za-z0-9_.:/ -]*$`)

// InputSeries turns scraped samples into promtool input series that hold
// their value for steps intervals, with extra labels (job, instance) as
// Prometheus's scrape adds them.
func InputSeries(samples []Sample, extra map[string]string, steps int) ([]map[string]string, error) {
	var out []map[string]string
	for _, s := range samples {
		ls := map[string]string{}
		for k, v := range s.Labels {
			ls[k] = v
		}
		for k, v := range extra {
			ls[k] = v
		}
		keys := make([]string, 0, len(ls))
		for k := range ls {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			if !seriesRE.MatchString(ls[k]) {
				return nil, fmt.Errorf("%s: label %s=%q needs escaping", s.Name, k, ls[k])
			}
			parts = append(parts, fmt.Sprintf("%s=%q", k, ls[k]))
		}
		out = append(out, map[string]string{
			"series": fmt.Sprintf("%s{%s}", s.Name, strings.Join(parts, ",")),
			"values": fmt.Sprintf("%vx%d", s.Value, steps),
		})
	}
	return out, nil
}

// ExprCheck is a promql_expr_test of a generated rule test.
type ExprCheck struct {
	Expr     string  `yaml:"expr"`
	EvalTime string  `yaml:"eval_time"`
	Want     float64 `yaml:"-"`
}

// RunRuleTest writes a promtool rule test over edged-rules.yaml with
// series as input (1m apart) and checks, each an expression whose single
// sample, without labels, must equal Want; it fails t with promtool's
// output when one does not.
func RunRuleTest(t testing.TB, name string, series []map[string]string, checks []ExprCheck) {
	t.Helper()
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []sample `yaml:"exp_samples"`
	}
	var exprs []exprTest
	for _, c := range checks {
		exprs = append(exprs, exprTest{Expr: c.Expr, EvalTime: c.EvalTime, ExpSamples: []sample{{Labels: "{}", Value: c.Want}}})
	}
	doc := map[string]any{
		"rule_files":          []string{filepath.Join(Root(t), RulesFile)},
		"evaluation_interval": "1m",
		"tests": []any{map[string]any{
			"name": name, "interval": "1m", "input_series": series, "promql_expr_test": exprs,
		}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "live.test.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := Promtool(t, dir, "test", "rules", p); err != nil {
		t.Errorf("%s: promtool test rules: %v\n%s", name, err, out)
	}
}
