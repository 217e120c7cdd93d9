package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/goldentooth/edged/lbpool"
)

// PoolSummary is what `edged validate` reports about one pool.
type PoolSummary struct {
	Name          string
	V4, V6        uint64
	AutoAssign    bool
	AvoidBuggyIPs bool
	// Advertisements name the L2 advertisements announcing the pool, with
	// their interfaces; empty means the pool is not announced.
	Advertisements []string
}

// Summary describes every pool as edged will use it.
func (c *Config) Summary() ([]PoolSummary, error) {
	a, err := lbpool.New(c.LBPools)
	if err != nil {
		return nil, err
	}
	stats := a.Stats()
	out := make([]PoolSummary, len(c.LBPools))
	for i, p := range c.LBPools {
		out[i] = PoolSummary{Name: p.Name, V4: stats[i].TotalV4, V6: stats[i].TotalV6, AutoAssign: p.AutoAssign, AvoidBuggyIPs: p.AvoidBuggyIPs}
		if v, ok := c.staticVIP(p.Name); ok {
			out[i].Advertisements = []string{fmt.Sprintf("static VIP %s (%s)", v.Name, places(c.staticInterfaces(v), v.Nodes))}
			continue
		}
		for _, ad := range c.AdvertisementsFor(p.Name) {
			out[i].Advertisements = append(out[i].Advertisements, fmt.Sprintf("%s (%s)", ad.Name, places(c.InterfacesOf(ad), ad.Nodes)))
		}
	}
	return out, nil
}

// places describes where something is announced: interfaces and hosts.
func places(ifs, nodes []string) string {
	desc := "all interfaces"
	if len(ifs) > 0 {
		desc = strings.Join(ifs, ",")
	}
	if len(nodes) > 0 {
		desc += " from " + strings.Join(nodes, ",")
	}
	return desc
}

// WriteSummary prints the summary as a table.
func WriteSummary(w io.Writer, path string, pools []PoolSummary) error {
	static := 0
	for _, p := range pools {
		if lbpool.IsStatic(p.Name) {
			static++
		}
	}
	fmt.Fprintf(w, "%s: ok, %d pools", path, len(pools)-static)
	if static > 0 {
		fmt.Fprintf(w, ", %d static VIPs", static)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tIPv4\tIPv6\tAUTO-ASSIGN\tAVOID-BUGGY-IPS\tANNOUNCED BY")
	for _, p := range pools {
		ann := "not announced (no L2 advertisement selects it)"
		if len(p.Advertisements) > 0 {
			ann = strings.Join(p.Advertisements, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\n", p.Name, count(p.V4), count(p.V6), p.AutoAssign, p.AvoidBuggyIPs, ann)
	}
	return tw.Flush()
}

// count prints n with thousands separators, and saturated IPv6 sizes as such.
func count(n uint64) string {
	if n == ^uint64(0) {
		return ">=2^64"
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
