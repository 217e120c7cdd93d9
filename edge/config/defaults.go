package config

import (
	"os"
	"time"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/haproxy"
	"github.com/goldentooth/edged/raft"
)

// Defaults. The raft timings aim at sub-second failover on a LAN; see
// docs/raft.md for the trade-off.
const (
	DefaultDataDir     = "/var/lib/edged"
	DefaultAdminSocket = "/run/edged/admin.sock"
	// DefaultRaftBind is raft.bindAddress for a host that has no own
	// raft.peers entry nor advertiseAddress (see defaultListeners).
	DefaultRaftBind = "0.0.0.0:7950"
	// The raft timings are the raft package's, so benchmarks and the daemon
	// agree on one set of defaults.
	DefaultHeartbeatTimeout = raft.DefaultHeartbeatTimeout
	MinHeartbeatTimeout     = raft.MinHeartbeatTimeout
	DefaultElectionTimeout  = raft.DefaultElectionTimeout
	DefaultLeaseDuration    = raft.DefaultLeaseDuration
	DefaultClockDriftMargin = raft.DefaultClockDriftMargin
	DefaultSnapshotInterval = raft.DefaultSnapshotInterval
	DefaultSnapshotThresh   = raft.DefaultSnapshotThreshold
	DefaultIPMode           = "VIP"
	DefaultMetallbNamespace = "metallb-system"
	DefaultResync           = 10 * time.Minute
	// DefaultKubeQPS and DefaultKubeBurst: one status write per allocation
	// at 50/s fills the reference pool (1,279 Services) in well under a
	// minute, and a burst of 100 absorbs a typical kubectl apply.
	DefaultKubeQPS   = 50
	DefaultKubeBurst = 100
	// DefaultGARPCount and DefaultGARPInterval: a short burst after takeover,
	// as MetalLB's speaker sends.
	DefaultGARPCount       = 3
	DefaultGARPInterval    = 100 * time.Millisecond
	DefaultRefreshInterval = 30 * time.Second
	// DefaultHandoverLinger covers the new owner's lease grant and
	// gratuitous ARP reaching every client, with a wide margin; it also
	// delays edged's exit by at most this much.
	DefaultHandoverLinger = 2 * time.Second
	DefaultHAProxyFile    = "/etc/haproxy/edged/edged.cfg"
	DefaultOperatorFile   = "/etc/haproxy/haproxy.cfg"
	DefaultMasterSocket   = "/run/haproxy-master.sock"
	// DefaultStatsSocket is Debian's own (haproxy.cfg's "stats socket
	// /run/haproxy/admin.sock mode 660 level admin"): /run/haproxy is
	// haproxy:haproxy 2775, so the socket is group haproxy, which edged's
	// user joins. DefaultMasterSocket is Debian's haproxy.service's -S path,
	// made mode 660 group haproxy by the package's drop-in.
	DefaultStatsSocket   = "/run/haproxy/admin.sock"
	DefaultHAProxyBinary = "haproxy"
	DefaultCertDir       = "/etc/haproxy/edged/certs"
	// DefaultServerSlots pre-allocates servers per backend so endpoint
	// changes never need a reload.
	DefaultServerSlots  = 16
	DefaultCoalesce     = haproxy.DefaultWindow
	DefaultBackendMode  = lbconfig.BackendEndpoints
	DefaultStatsURI     = "/stats"
	DefaultStatsRefresh = 10 * time.Second
	// DefaultMetricsAddress is metrics.address for a host whose own address
	// is unknown (see defaultListeners): MetalLB's port on every address.
	DefaultMetricsAddress = ":7472"
)

// defaults returns the values every section starts from.
func defaults() map[string]any {
	host, _ := os.Hostname()
	return map[string]any{
		"node::name":                   host,
		"node::dataDir":                DefaultDataDir,
		"node::adminSocket":            DefaultAdminSocket,
		"raft::heartbeatTimeout":       DefaultHeartbeatTimeout,
		"raft::electionTimeout":        DefaultElectionTimeout,
		"raft::leaseDuration":          DefaultLeaseDuration,
		"raft::clockDriftMargin":       DefaultClockDriftMargin,
		"raft::snapshotInterval":       DefaultSnapshotInterval,
		"raft::snapshotThreshold":      DefaultSnapshotThresh,
		"kubernetes::ipMode":           DefaultIPMode,
		"kubernetes::metallbNamespace": DefaultMetallbNamespace,
		"kubernetes::resync":           DefaultResync,
		"kubernetes::qps":              DefaultKubeQPS,
		"kubernetes::burst":            DefaultKubeBurst,
		"announce::garpCount":          DefaultGARPCount,
		"announce::garpInterval":       DefaultGARPInterval,
		"announce::refreshInterval":    DefaultRefreshInterval,
		"announce::handoverLinger":     DefaultHandoverLinger,
		"haproxy::configFile":          DefaultHAProxyFile,
		"haproxy::operatorFile":        DefaultOperatorFile,
		"haproxy::masterSocket":        DefaultMasterSocket,
		"haproxy::statsSocket":         DefaultStatsSocket,
		"haproxy::binary":              DefaultHAProxyBinary,
		"haproxy::certDir":             DefaultCertDir,
		"haproxy::serverSlots":         DefaultServerSlots,
		"haproxy::coalesce":            DefaultCoalesce,
		"haproxy::backendMode":         DefaultBackendMode,
		"haproxy::stats::uri":          DefaultStatsURI,
		"haproxy::stats::refresh":      DefaultStatsRefresh,
		"haproxy::timeouts::connect":   haproxy.DefaultTimeouts.Connect,
		"haproxy::timeouts::client":    haproxy.DefaultTimeouts.Client,
		"haproxy::timeouts::server":    haproxy.DefaultTimeouts.Server,
		"haproxy::timeouts::tunnel":    haproxy.DefaultTimeouts.Tunnel,
		"log::level":                   DefaultLogLevel,
		"health::haproxy":              true,
		"health::carrier":              true,
		"health::interval":             DefaultHealthInterval,
		"health::timeout":              DefaultHealthTimeout,
		"health::failAfter":            DefaultHealthFailAfter,
		"health::recoverAfter":         DefaultHealthRecoverAfter,
	}
}
