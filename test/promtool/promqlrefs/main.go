// Command promqlrefs parses PromQL expressions with Prometheus's own parser
// and prints, for each, the metric names it references. It reads a JSON
// array of strings on stdin and writes a JSON array of results on stdout,
// in the same order; an expression that does not parse carries its error.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Result is one expression's parse result.
type Result struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error,omitempty"`
	Metrics []string `json:"metrics"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promqlrefs: read a JSON array of expressions on stdin:", err)
		os.Exit(2)
	}
	out := make([]Result, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, parse(e))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "promqlrefs:", err)
		os.Exit(1)
	}
}

func parse(e string) Result {
	r := Result{Expr: e, Metrics: []string{}}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(e)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	seen := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				seen[m.Value] = true
			}
		}
		return nil
	})
	for m := range seen {
		r.Metrics = append(r.Metrics, m)
	}
	sort.Strings(r.Metrics)
	return r
}
