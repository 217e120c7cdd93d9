package raft

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// ErrDataDirInUse is returned by Recover while another process (a running
// edged) holds the data directory's raft.db.
var ErrDataDirInUse = errors.New("raft data dir is in use: stop edged on this host first")

// lockWait is how long Recover waits for raft.db's lock: a running edged
// holds it for its whole life, so any wait only delays the refusal.
const lockWait = time.Second

// RecoveryPlan is what Recover is about to do, shown to the operator
// before anything is written.
type RecoveryPlan struct {
	// Last is the configuration the data dir holds now.
	Last []Peer
	// Members is the new configuration: every listed survivor as a voter.
	Members []Peer
	// Previous is the cluster ID now, ID the one stamped by the recovery.
	Previous, ID ClusterID
	// LastIndex is the last raft log index in the data dir: every entry up
	// to it is kept (committed or not).
	LastIndex uint64
}

// Recover makes this host (and the other listed survivors, each running
// Recover with the same members) a new raft group, offline: edged must not
// run on this host. It reads the snapshot and log as they are, keeps every
// allocation and assignment in them, replaces the configuration with
// members as voters (hashicorp/raft's RecoverCluster: the FSM is rebuilt
// from snapshot and log, a snapshot with the new configuration is written
// and the log is compacted) and stamps a new cluster ID derived from the
// old one and the members, so every survivor computes the same one and
// hosts that kept the old ID are refused by the transport.
//
// members must include this host (c.NodeID). A member without an address
// takes the one in the last configuration (this host: AdvertiseAddr, else
// BindAddr, if it is not there). confirm, if not nil, sees the plan
// while the data dir is locked and can abort by returning an error.
func Recover(c Config, members []Peer, confirm func(RecoveryPlan) error) (RecoveryPlan, error) {
	cfg := c.withDefaults()
	var plan RecoveryPlan
	if cfg.NodeID == "" || cfg.DataDir == "" {
		return plan, fmt.Errorf("%w: recover needs node.name and node.dataDir", ErrConfig)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft.db")); err != nil {
		return plan, fmt.Errorf("recover: no raft state in %s: %w", cfg.DataDir, err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: lockWait}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return plan, fmt.Errorf("recover %s: %w", cfg.DataDir, ErrDataDirInUse)
	}
	if err != nil {
		return plan, fmt.Errorf("recover: open raft.db: %w", err)
	}
	defer bolt.Close()
	hl := hclogFor(cfg.Logger)
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, hl)
	if err != nil {
		return plan, fmt.Errorf("recover: snapshot store: %w", err)
	}
	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.NodeID)
	rc.Logger = hl
	_, trans := hraft.NewInmemTransport("")
	defer trans.Close()

	last, err := hraft.GetConfiguration(rc, newFSM(nil), bolt, bolt, snaps, trans)
	if err != nil {
		return plan, fmt.Errorf("recover: read the last configuration: %w", err)
	}
	for _, sv := range last.Servers {
		plan.Last = append(plan.Last, Peer{ID: string(sv.ID), Address: string(sv.Address)})
	}
	if plan.Members, err = resolveMembers(cfg, members, plan.Last); err != nil {
		return plan, err
	}
	if _, plan.Previous, err = readClusterID(cfg.DataDir); err != nil {
		return plan, err
	}
	plan.ID = deriveRecoveredID(plan.Previous, plan.Members)
	if plan.LastIndex, err = bolt.LastIndex(); err != nil {
		return plan, fmt.Errorf("recover: read the log: %w", err)
	}
	if confirm != nil {
		if err := confirm(plan); err != nil {
			return plan, err
		}
	}

	var conf hraft.Configuration
	for _, m := range plan.Members {
		conf.Servers = append(conf.Servers, hraft.Server{ID: hraft.ServerID(m.ID), Address: hraft.ServerAddress(m.Address), Suffrage: hraft.Voter})
	}
	// A fresh Config: GetConfiguration marked rc to skip starting up.
	rc2 := hraft.DefaultConfig()
	rc2.LocalID, rc2.Logger = rc.LocalID, rc.Logger
	if err := hraft.RecoverCluster(rc2, newFSM(nil), bolt, bolt, snaps, trans, conf); err != nil {
		return plan, fmt.Errorf("recover: %w", err)
	}
	// Stamped after the log was rewritten: if this fails, running Recover
	// again derives the same ID from the same previous one.
	rec := clusterIDRecord{ID: plan.ID.String(), Origin: originRecover}
	if !plan.Previous.IsZero() {
		rec.Previous = plan.Previous.String()
	}
	if err := writeClusterID(cfg.DataDir, rec); err != nil {
		return plan, err
	}
	cfg.Logger.Warn("raft group recovered: a new group with a new cluster ID; hosts of the old group will be refused",
		"members", fmt.Sprint(plan.Members), "cluster", plan.ID.String(), "previous", plan.Previous.String())
	return plan, nil
}

// resolveMembers fills in members' addresses from the last configuration
// and checks the list: unique, this host included, every address known.
func resolveMembers(cfg Config, members []Peer, last []Peer) ([]Peer, error) {
	if len(members) == 0 {
		members = []Peer{{ID: cfg.NodeID}}
	}
	known := map[string]string{}
	for _, p := range last {
		known[p.ID] = p.Address
	}
	self := cfg.AdvertiseAddr
	if self == "" {
		self = cfg.BindAddr
	}
	seen := map[string]bool{}
	hasSelf := false
	out := make([]Peer, 0, len(members))
	for _, m := range members {
		if m.Address == "" {
			m.Address = known[m.ID]
		}
		if m.Address == "" && m.ID == cfg.NodeID {
			m.Address = self
		}
		if m.Address == "" {
			return nil, fmt.Errorf("recover: member %s is not in the last configuration (%s): give its address as %s=host:port",
				m.ID, fmt.Sprint(last), m.ID)
		}
		if err := CheckMember(m.ID, m.Address); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		if seen[m.ID] {
			return nil, fmt.Errorf("recover: member %s listed twice", m.ID)
		}
		seen[m.ID] = true
		hasSelf = hasSelf || m.ID == cfg.NodeID
		out = append(out, m)
	}
	if !hasSelf {
		return nil, fmt.Errorf("recover: the members must include this host (%s): recover runs on a survivor", cfg.NodeID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
