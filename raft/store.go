package raft

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/goldentooth/edged/broadcast"
	"github.com/goldentooth/edged/lbpool"
)

// Errors callers test with errors.Is.
var (
	// ErrNotLeader is returned by writes on a host that is not the leader.
	// Writes are not forwarded: the caller (the Kubernetes controller) runs
	// only on the leader and retries when leadership moves.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrClosed is returned after Close started.
	ErrClosed = errors.New("raft store closed")
)

// snapshotsRetained is how many snapshots stay on disk (raft's default 2:
// the newest plus one to fall back on).
const snapshotsRetained = 2

// logCacheSize is how many recent log entries stay in memory for
// replication (hraftd and rqlite use 512).
const logCacheSize = 512

// Store is one host's member of the raft group.
type Store struct {
	cfg    Config
	raft   *hraft.Raft
	fsm    *fsm
	stream *stream
	trans  *hraft.NetworkTransport
	bolt   *raftboltdb.BoltStore

	subs      broadcast.Group // every applied change and lease change
	stateSubs broadcast.Group // applied changes only

	renewNow chan struct{}
	// renewFailed asks the renewal loop to retry soon.
	renewFailed chan struct{}
	// reconcileNow wakes the leader loop early (a renewal or apply that
	// may give reconcile work); otherwise it sleeps until a deadline.
	reconcileNow chan struct{}
	lc           leaseClient
	// voter is what this host promised as a voter (voter.go).
	voter *voterState
	// handedOff is set once Close dropped the leases: nothing is installed
	// after it.
	handedOff atomic.Bool
	// configReadyAt is when this leader may make the next membership
	// change (see gateConfigChange).
	configMu      sync.Mutex
	configReadyAt time.Time
	leaseMu       sync.Mutex
	// leaseIPs (sorted, never modified in place: readers may keep it) are
	// held until leaseUntil (leaseOf computes one end for the whole set).
	leaseIPs   []netip.Addr
	leaseUntil time.Time

	draining atomic.Bool
	// unhealthy is set by SetLocalHealthy(false).
	unhealthy atomic.Bool
	// caughtUp latches CaughtUp's first true.
	caughtUp atomic.Bool
	leaving  atomic.Bool
	closing  atomic.Bool
	ldr      atomic.Pointer[leaderState]
	// incarnation numbers this process and reqSeq the renewals it sent
	// (renewRequest.Incarnation, ReqSeq).
	incarnation uint64
	reqSeq      atomic.Uint64
	// logLim rate-limits warnings about misbehaving peers.
	logLim logLimiter
	met    *metrics

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts this host's raft member: it opens (or creates) the data
// directory, bootstraps a new group from cfg.Peers if there is no state yet,
// and starts the lease and leader loops.
func Open(c Config) (*Store, error) {
	cfg := c.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("node", cfg.NodeID)
	cfg.Logger = log
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft data dir: %w", err)
	}
	s := &Store{cfg: cfg, renewNow: make(chan struct{}, 1), reconcileNow: make(chan struct{}, 1),
		renewFailed: make(chan struct{}, 1), stop: make(chan struct{}), met: newMetrics(), incarnation: newIncarnation(),
		voter: newVoterState(time.Now(), cfg.LeaseDuration, cfg.ClockDriftMargin),
		lc:    leaseClient{conns: map[string]*voterConn{}, promises: map[string]promiseFrom{}}}
	s.fsm = newFSM(s.changed)
	s.fsm.onConfig = s.configChanged
	s.unhealthy.Store(cfg.StartUnhealthy)
	if err := s.openRaft(); err != nil {
		if s.raft != nil {
			_ = s.raft.Shutdown().Error()
		}
		s.closeTransport()
		close(s.stop) // ends the metrics observer
		return nil, err
	}
	s.stream.start(s.serveLease)
	s.wg.Add(3)
	go s.renewLoop()
	go s.leaderLoop()
	go s.electionLoop()
	return s, nil
}

func (s *Store) openRaft() error {
	cfg := s.cfg
	var err error
	if cfg.InsecurePlaintext {
		cfg.Logger.Warn("raft transport is plain TCP without TLS (insecurePlaintext: true): any host that can reach the port can join the group")
		s.stream, err = newStream(cfg, nil, nil)
	} else {
		srv, cli, terr := loadTLS(cfg.TLS)
		if terr != nil {
			return terr
		}
		s.stream, err = newStream(cfg, srv, cli)
	}
	if err != nil {
		return err
	}
	hl := hclogFor(cfg.Logger)
	s.trans = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream: s.stream, MaxPool: 3, Timeout: cfg.TransportTimeout, Logger: hl,
	})
	s.bolt, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft.db: %w", err)
	}
	logs, err := hraft.NewLogCache(logCacheSize, s.bolt)
	if err != nil {
		return fmt.Errorf("log cache: %w", err)
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, hl)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	// Below HeartbeatTimeout, not equal to it: hashicorp/raft refuses a
	// configuration whose LeaderLeaseTimeout exceeds HeartbeatTimeout, and
	// pokeFollower reloads HeartbeatTimeout 1 ns shorter.
	rc.LeaderLeaseTimeout = min(cfg.LeaseDuration, cfg.HeartbeatTimeout-time.Millisecond)
	rc.CommitTimeout = commitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.SnapshotThreshold
	rc.Logger = hl
	existing, err := hraft.HasExistingState(logs, s.bolt, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	// Before raft starts: its first dial must carry the cluster ID.
	if s.stream.ident, err = openIdentity(cfg, existing); err != nil {
		return err
	}
	s.raft, err = hraft.NewRaft(rc, s.fsm, logs, s.bolt, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.met.observe(s.raft, s.stop) // before bootstrap, to count the first election
	if !existing && len(cfg.Peers) > 0 {
		var conf hraft.Configuration
		for _, p := range cfg.Peers {
			conf.Servers = append(conf.Servers, hraft.Server{
				ID: hraft.ServerID(p.ID), Address: hraft.ServerAddress(p.Address), Suffrage: hraft.Voter})
		}
		if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, hraft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	return nil
}

// Addr is the address peers use to reach this host's raft transport.
func (s *Store) Addr() string { return s.stream.Addr().String() }

// ID is this host's node ID.
func (s *Store) ID() string { return s.cfg.NodeID }

// ClusterID is the ID of the raft group this host belongs to (zero: a
// data dir from before cluster IDs, or a host not yet added to a group).
func (s *Store) ClusterID() ClusterID { return s.stream.ident.current() }

// IsLeader reports whether this host is the raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == hraft.Leader }

// Leader returns the current leader's ID and address ("" if unknown).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Lookup returns key's allocation from local state.
func (s *Store) Lookup(key string) (lbpool.Allocation, bool) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.alloc.Lookup(key)
}

// ServiceLabels returns the labels of each Service holding ip (more than
// one for a shared IP), in key order, from the local state: what an L2
// advertisement's serviceSelectors are matched against. The maps are the
// state's own: read them, never change them.
func (s *Store) ServiceLabels(ip netip.Addr) []map[string]string {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	keys := s.fsm.alloc.Holders(ip)
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.fsm.alloc.Labels(k))
	}
	return out
}

// State returns a read-only copy of the state.
func (s *Store) State() View {
	s.fsm.mu.RLock()
	d := s.fsm.snapshotData()
	stats := s.fsm.alloc.Stats()
	s.fsm.mu.RUnlock()
	id, addr := s.Leader()
	return View{ConfigVersion: d.Version, Pools: d.Pools, Eligibility: d.Eligibility,
		Allocations: d.Allocations, Assignments: d.Assignments, Hosts: d.Hosts, Stats: stats,
		Leader: id, LeaderAddr: addr, Self: s.cfg.NodeID, IsLeader: s.IsLeader(), AppliedIndex: d.Applied}
}

// FreeEpoch counts, on this host, the applied changes after which an
// allocation that failed may succeed (an address freed or moved, an
// allocation's sharing terms changed, new pools, a restored snapshot).
// Read it before an Allocate: if the Allocate fails and the epoch later
// exceeds what was read, trying again is worthwhile.
func (s *Store) FreeEpoch() uint64 {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.freeEpoch
}

// PoolConfig returns the pools and pool eligibility in the state (copies):
// State without the allocations, for callers that compare often.
func (s *Store) PoolConfig() ([]lbpool.Pool, map[string][]string) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.alloc.Pools(), copyElig(s.fsm.eligibility)
}

// Changes returns a channel that receives a value (coalesced) after every
// applied change and after every renewal or change of this host's leases
// (about every LeaseDuration/4), and a function to stop the subscription.
// An announcer calls Leases on each notification to learn new Until times.
func (s *Store) Changes() (<-chan struct{}, func()) { return s.subs.Subscribe() }

// StateChanges is Changes without the lease renewals: it fires (coalesced)
// only after an applied change or a restore of the replicated state. Parts
// that read State but not Leases use it; lease renewals come every
// LeaseDuration/4 and would make them copy the whole state that often.
func (s *Store) StateChanges() (<-chan struct{}, func()) { return s.stateSubs.Subscribe() }

// changed is called by the FSM after every apply and restore.
func (s *Store) changed() {
	s.subs.Notify()
	s.stateSubs.Notify()
	s.kickRenew()
}

// kickRenew asks for a lease renewal now; anything that does may also
// give the leader's reconcile work, so it wakes that too.
func (s *Store) kickRenew() {
	select {
	case s.renewNow <- struct{}{}:
	default:
	}
	s.kickReconcile()
}

// kickRenewOnly asks for a renewal now without waking the leader loop.
func (s *Store) kickRenewOnly() {
	select {
	case s.renewNow <- struct{}{}:
	default:
	}
}

func (s *Store) kickReconcile() {
	select {
	case s.reconcileNow <- struct{}{}:
	default:
	}
}

// Stats returns hashicorp/raft's counters (term, indexes, state).
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// commitTimeout is how long hashicorp/raft's leader waits without new
// entries before it tells the followers the commit index anyway (its
// default is 50 ms). Voters promise from their applied state, so a moved
// IP reaches its new owner only once a majority applied the move: every
// millisecond here is failover time.
const commitTimeout = 10 * time.Millisecond
