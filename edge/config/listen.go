package config

import (
	"net"
	"net/netip"
	"strconv"
)

// DefaultMetricsPort is MetalLB's metrics port, so scrape configs carry over.
const DefaultMetricsPort = 7472

// defaultListeners fills raft.bindAddress and metrics.address when the
// file leaves them empty, with this host's own address: VIPs live on lo,
// so a listener on every address would answer on every VIP too, exposing
// raft and the metrics to anyone who can reach a LoadBalancer IP.
//
// This host's address is the host of its own raft.peers entry (the one
// whose id is node.name), else of raft.advertiseAddress; raft binds to that
// entry's address, the metrics to its host with DefaultMetricsPort. With
// neither (a host without peers) they fall back to DefaultRaftBind and
// DefaultMetricsAddress, every address, which Wildcards reports.
func (c *Config) defaultListeners() {
	own := ""
	for _, p := range c.Raft.Peers {
		if p.ID == c.Node.Name {
			own = p.Address
		}
	}
	if own == "" {
		own = c.Raft.AdvertiseAddress
	}
	if c.Raft.BindAddress == "" {
		c.Raft.BindAddress = DefaultRaftBind
		if own != "" {
			c.Raft.BindAddress = own
		}
	}
	if c.Metrics.Address == "" {
		c.Metrics.Address = DefaultMetricsAddress
		if host, _, err := net.SplitHostPort(c.Raft.BindAddress); err == nil && !wildcard(host) {
			c.Metrics.Address = net.JoinHostPort(host, strconv.Itoa(DefaultMetricsPort))
		}
	}
}

// Listener is one network listener edged opens, by its config field.
type Listener struct {
	Field   string // e.g. "metrics.address"
	Address string
}

// Wildcards returns edged's own listeners (raft.bindAddress,
// metrics.address) that listen on every address of the host. Such a
// listener also answers on every VIP edged puts on lo, so anyone who can
// reach a LoadBalancer IP reaches it; edged allows it (a host may have no
// better address) and warns at start.
func (c *Config) Wildcards() []Listener {
	var out []Listener
	for _, l := range []Listener{{"raft.bindAddress", c.Raft.BindAddress}, {"metrics.address", c.Metrics.Address}} {
		if host, _, err := net.SplitHostPort(l.Address); err == nil && wildcard(host) {
			out = append(out, l)
		}
	}
	return out
}

// wildcard reports whether host (of a host:port) means every address.
func wildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}
