package edge

import (
	"log/slog"

	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/raft"
)

// RaftConfig maps the raft section of edged.yaml onto raft.Config.
func RaftConfig(c *config.Config, log *slog.Logger) raft.Config {
	r := c.Raft
	rc := raft.Config{
		NodeID:            c.Node.Name,
		BindAddr:          r.BindAddress,
		AdvertiseAddr:     r.AdvertiseAddress,
		DataDir:           c.Node.DataDir,
		TLS:               raft.TLSFiles{CertFile: r.TLS.CertFile, KeyFile: r.TLS.KeyFile, CAFile: r.TLS.CAFile},
		InsecurePlaintext: r.InsecurePlaintext,
		HeartbeatTimeout:  r.HeartbeatTimeout,
		ElectionTimeout:   r.ElectionTimeout,
		LeaseDuration:     r.LeaseDuration,
		ClockDriftMargin:  r.ClockDriftMargin,
		SnapshotInterval:  r.SnapshotInterval,
		SnapshotThreshold: r.SnapshotThreshold,
		LeaveOnShutdown:   r.LeaveOnShutdown,
		Eligibility:       Eligibility(c),
		Logger:            log,
	}
	for _, p := range r.Peers {
		rc.Peers = append(rc.Peers, raft.Peer{ID: p.ID, Address: p.Address})
	}
	return rc
}

// Eligibility lists, per pool, the hosts its advertisements allow to
// announce it. A pool announced by any advertisement without a nodes list
// may be announced by every host, and is left out of the map.
func Eligibility(c *config.Config) map[string][]string {
	out := map[string][]string{}
	for i, p := range c.Pools {
		var hosts []string
		all := false
		for _, ad := range c.AdvertisementsFor(i) {
			if len(ad.Nodes) == 0 {
				all = true
				break
			}
			hosts = append(hosts, ad.Nodes...)
		}
		if !all && len(hosts) > 0 {
			out[p.Name] = hosts
		}
	}
	return out
}
