package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/vip"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/raft"
)

// announcer adapts the ARP responder to the appliance: it serves every
// interface an advertisement names and converts raft leases.
type announcer struct {
	a      *announce.Announcer
	vips   *vip.Manager
	log    *slog.Logger
	cancel context.CancelFunc
	last   []netip.Addr
}

// SetLeases answers ARP only for leased IPs (checked per frame against the
// lease end) and keeps exactly those IPs on lo.
func (n *announcer) SetLeases(ls []raft.Lease) {
	out := make([]announce.Lease, len(ls))
	ips := make([]netip.Addr, len(ls))
	for i, l := range ls {
		out[i] = announce.Lease{IP: l.IP, Until: l.Until}
		ips[i] = l.IP
	}
	n.a.SetLeases(out)
	slices.SortFunc(ips, netip.Addr.Compare)
	if !slices.Equal(ips, n.last) {
		if err := n.vips.Set(ips); err != nil {
			n.log.Warn("VIPs on lo", "err", err)
		}
		n.last = ips
	}
}

func (n *announcer) Close() error {
	n.a.Stop()
	n.cancel()
	return n.vips.Set(nil)
}

// newAnnouncer starts answering ARP on the advertisements' interfaces (all
// non-loopback interfaces when none is named).
func newAnnouncer(cfg *config.Config, log *slog.Logger) (*announcer, error) {
	ifaces, err := announceInterfaces(cfg)
	if err != nil {
		return nil, err
	}
	vips, err := vip.New()
	if err != nil {
		return nil, err
	}
	if err := vips.Set(nil); err != nil { // leftovers of a crash: no lease yet
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &announcer{a: announce.NewAnnouncer(), vips: vips, log: log, cancel: cancel}
	for _, ifc := range ifaces {
		go func(ifc string) {
			if err := n.a.Serve(ctx, ifc); err != nil {
				log.Warn("ARP responder stopped", "interface", ifc, "err", err)
			}
		}(ifc)
	}
	log.Info("answering ARP", "interfaces", ifaces)
	return n, nil
}

func announceInterfaces(cfg *config.Config) ([]string, error) {
	var out []string
	for _, ad := range cfg.L2Advertisements {
		for _, i := range ad.Interfaces {
			if !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	if len(out) == 0 {
		out = append(out, cfg.Announce.Interfaces...)
	}
	if len(out) > 0 {
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range all {
		if i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.Name)
		}
	}
	return out, nil
}

// registerCollectors adds the components' package-level metrics.
func registerCollectors(reg *prometheus.Registry) {
	for _, c := range append(announce.Collectors(), haproxy.Collectors()...) {
		reg.MustRegister(c)
	}
}
