package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults aimed at sub-second failover on a LAN of a few hosts; see
// docs/raft.md for the trade-off and the measurements behind them.
const (
	// DefaultHeartbeatTimeout is how long a follower waits for the leader
	// before starting an election (hashicorp/raft's default is 1s). Leases
	// do not depend on the leader, so an election darkens nobody and a
	// quick one costs little: it shortens leader-and-owner failover.
	DefaultHeartbeatTimeout = 150 * time.Millisecond
	// DefaultElectionTimeout is how long a candidate waits for votes
	// (randomised up to 2x) before it tries again after a split vote.
	DefaultElectionTimeout = 150 * time.Millisecond
	// MinHeartbeatTimeout is the shortest HeartbeatTimeout accepted:
	// hashicorp/raft needs 5 ms for its leader lease, which Open sets 1 ms
	// below HeartbeatTimeout (pokeFollower).
	MinHeartbeatTimeout = 10 * time.Millisecond
	// DefaultLeaseDuration is how long a renewed announcement lease lasts.
	// It bounds owner-crash failover from below: the owner's IPs move at most
	// LeaseDuration + ClockDriftMargin + one commit after its last renewal.
	DefaultLeaseDuration = 200 * time.Millisecond
	// DefaultClockDriftMargin covers clock-rate differences between hosts
	// (10% of the lease, far above the ~100 ppm of a crystal oscillator) and
	// scheduling jitter on the leader.
	DefaultClockDriftMargin = 20 * time.Millisecond
	// DefaultSnapshotInterval is how often raft checks whether to snapshot.
	DefaultSnapshotInterval = 30 * time.Second
	// DefaultSnapshotThreshold is how many new log entries trigger a snapshot.
	DefaultSnapshotThreshold = 1024
	// DefaultTransportTimeout bounds one raft RPC's I/O on the TCP transport.
	DefaultTransportTimeout = 2 * time.Second
)

// Peer is one member of the initial raft configuration.
type Peer struct {
	ID      string
	Address string
}

// TLSFiles names the PEM files for mutual TLS between hosts.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Config configures a Store. Zero timings take the defaults above.
type Config struct {
	// NodeID is this host's stable raft server ID.
	NodeID string
	// BindAddr is the TCP address the raft transport listens on.
	BindAddr string
	// AdvertiseAddr is the address peers dial; empty uses the bound address.
	AdvertiseAddr string
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// Peers is the initial configuration used to bootstrap a new group (it
	// should include this host). Empty: wait to be added with AddVoter.
	Peers []Peer
	// TLS are the certificate, key and CA for mutual TLS.
	TLS TLSFiles
	// InsecurePlaintext allows plain TCP without TLS (logged as a warning).
	InsecurePlaintext bool

	// HeartbeatTimeout is raft's follower timeout before an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes.
	ElectionTimeout time.Duration
	// LeaseDuration is how long one renewal lets a host announce its IPs.
	LeaseDuration time.Duration
	// ClockDriftMargin is added before another host may take a lapsed lease.
	ClockDriftMargin time.Duration
	// SnapshotInterval is how often raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many new entries trigger a snapshot (and how
	// many trailing entries are kept after it).
	SnapshotThreshold uint64
	// TransportTimeout bounds one raft RPC's network I/O.
	TransportTimeout time.Duration
	// LeaveOnShutdown makes Close remove this host from the raft group.
	LeaveOnShutdown bool
	// StartUnhealthy opens the store as if SetLocalHealthy(false) had been
	// called: a host whose health is checked takes no IP before its first
	// check passed.
	StartUnhealthy bool

	// Eligibility maps a pool name to the host IDs that may announce its
	// IPs; a missing or empty entry allows every host. It is written into
	// the replicated state by SetPools.
	Eligibility map[string][]string

	// Logger receives structured logs; nil uses slog.Default().
	Logger *slog.Logger
	// LeaseObserver, if set, is told about every lease this host takes or
	// drops, in real time (tests record intervals with it).
	LeaseObserver LeaseObserver
	// DialContext, if set, replaces the TCP dialer used for peers (tests
	// route it through a partitioning proxy).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrConfig is wrapped by every configuration error from Open.
var ErrConfig = errors.New("invalid raft configuration")

func (c *Config) withDefaults() Config {
	o := *c
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&o.ElectionTimeout, DefaultElectionTimeout)
	def(&o.LeaseDuration, DefaultLeaseDuration)
	def(&o.ClockDriftMargin, DefaultClockDriftMargin)
	def(&o.SnapshotInterval, DefaultSnapshotInterval)
	def(&o.TransportTimeout, DefaultTransportTimeout)
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DialContext == nil {
		d := &net.Dialer{}
		o.DialContext = d.DialContext
	}
	return o
}

func (c *Config) validate() error {
	bad := func(field, what string) error {
		return fmt.Errorf("%w: field raft.%s: %s", ErrConfig, field, what)
	}
	switch {
	case c.NodeID == "":
		return bad("nodeID", "empty; set node.name to a stable host ID")
	case c.BindAddr == "":
		return bad("bindAddress", "empty; set host:port to listen on")
	case c.DataDir == "":
		return bad("dataDir", "empty; set a directory for the raft log")
	case !c.InsecurePlaintext && (c.TLS.CertFile == "" || c.TLS.KeyFile == "" || c.TLS.CAFile == ""):
		return bad("tls", "certFile, keyFile and caFile are required (or set insecurePlaintext: true)")
	case c.HeartbeatTimeout < MinHeartbeatTimeout:
		return bad("heartbeatTimeout", fmt.Sprintf("%v is below %v", c.HeartbeatTimeout, MinHeartbeatTimeout))
	case c.LeaseDuration*2 > c.HeartbeatTimeout*4:
		return bad("leaseDuration", "must be at most twice heartbeatTimeout")
	}
	seen := map[string]bool{}
	for i, p := range c.Peers {
		if p.ID == "" || p.Address == "" {
			return bad(fmt.Sprintf("peers[%d]", i), "id and address are required")
		}
		if seen[p.ID] {
			return bad(fmt.Sprintf("peers[%d].id", i), "duplicate id "+p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}
