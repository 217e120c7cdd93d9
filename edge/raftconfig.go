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
		Eligibility:       c.Eligibility(),
		Logger:            log,
	}
	for _, p := range r.Peers {
		rc.Peers = append(rc.Peers, raft.Peer{ID: p.ID, Address: p.Address})
	}
	return rc
}
