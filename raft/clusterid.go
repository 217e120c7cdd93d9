package raft

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ClusterID names one raft group. Every connection between hosts carries
// the dialer's ClusterID, and a host refuses a peer whose ID differs from
// its own, so members of a group that was recovered elsewhere (`edged
// recover`) are refused instead of merged. The zero ID means "none yet".
type ClusterID [16]byte

// String is the ID in hex, "-" for the zero ID.
func (c ClusterID) String() string {
	if c.IsZero() {
		return "-"
	}
	return hex.EncodeToString(c[:])
}

// IsZero reports whether c is the zero ID (no identity).
func (c ClusterID) IsZero() bool { return c == ClusterID{} }

// parseClusterID reads String's hex form ("" or "-" is the zero ID).
func parseClusterID(s string) (ClusterID, error) {
	var c ClusterID
	if s == "" || s == "-" {
		return c, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(c) {
		return c, fmt.Errorf("cluster ID %q: want %d hex digits", s, 2*len(c))
	}
	copy(c[:], b)
	return c, nil
}

// clusterIDFile is the identity's file in the data directory.
const clusterIDFile = "cluster-id"

// Origins of a cluster ID, recorded in its file.
const (
	originBootstrap = "bootstrap"
	originRecover   = "recover"
	originJoined    = "joined"
)

// clusterIDRecord is the file's JSON.
type clusterIDRecord struct {
	ID       string `json:"id"`
	Origin   string `json:"origin"`
	Previous string `json:"previous,omitempty"`
}

// deriveBootstrapID is the ID of a group bootstrapped from peers: a hash
// of the sorted IDs and addresses, so every host bootstrapping from the same
// raft.peers list computes the same ID without talking to the others.
func deriveBootstrapID(peers []Peer) ClusterID {
	return hashID("edged bootstrap v1", ClusterID{}, peers)
}

// deriveRecoveredID is the ID of a group recovered from previous with
// members: every survivor recovering the same group with the same member
// list computes the same ID, and it differs from previous and from any
// recovery of other members.
func deriveRecoveredID(previous ClusterID, members []Peer) ClusterID {
	return hashID("edged recover v1", previous, members)
}

func hashID(domain string, previous ClusterID, peers []Peer) ClusterID {
	ps := append([]Peer(nil), peers...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%x\n", domain, previous[:])
	for _, p := range ps {
		fmt.Fprintf(h, "%s\x00%s\n", p.ID, p.Address)
	}
	var c ClusterID
	copy(c[:], h.Sum(nil))
	return c
}

// readClusterID reads dir's identity; a missing file is the zero ID.
func readClusterID(dir string) (clusterIDRecord, ClusterID, error) {
	var r clusterIDRecord
	b, err := os.ReadFile(filepath.Join(dir, clusterIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, ClusterID{}, nil
	}
	if err != nil {
		return r, ClusterID{}, fmt.Errorf("read cluster ID: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, ClusterID{}, fmt.Errorf("read cluster ID %s: %w", filepath.Join(dir, clusterIDFile), err)
	}
	id, err := parseClusterID(r.ID)
	if err != nil {
		return r, ClusterID{}, fmt.Errorf("read cluster ID %s: %w", filepath.Join(dir, clusterIDFile), err)
	}
	return r, id, nil
}

// writeClusterID replaces dir's identity atomically (mode 0600).
func writeClusterID(dir string, r clusterIDRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, clusterIDFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write cluster ID: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, clusterIDFile)); err != nil {
		return fmt.Errorf("write cluster ID: %w", err)
	}
	return nil
}

// identity is this host's cluster ID as the transport checks it.
type identity struct {
	dir string
	log *slog.Logger
	// adopt: this host had no raft state and is not bootstrapping, so it
	// waits to be added to a group and takes the ID of the first raft
	// connection that carries one (the leader that added it).
	adopt bool

	mu      sync.Mutex
	id      ClusterID
	warnLim logLimiter // per remote host: a refused peer redials every heartbeat
	refused atomic.Uint64
}

// openIdentity decides this host's identity when its Store opens. With raft
// state the file is authoritative (missing: a data dir from before cluster
// IDs, which checks nothing until the next recovery). Without raft state any
// file is stale (a wiped log) and is replaced: bootstrapping from peers
// derives the ID from them; otherwise the host adopts its first leader's.
func openIdentity(cfg Config, existing bool) (*identity, error) {
	i := &identity{dir: cfg.DataDir, log: cfg.Logger}
	if existing {
		r, id, err := readClusterID(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		i.id = id
		if id.IsZero() {
			cfg.Logger.Warn("raft data dir has no cluster ID (created before cluster IDs): peers are not checked until the next `edged recover`")
		} else {
			cfg.Logger.Debug("raft cluster ID", "cluster", id.String(), "origin", r.Origin)
		}
		return i, nil
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, clusterIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale cluster ID: %w", err)
	}
	if len(cfg.Peers) == 0 {
		i.adopt = true
		return i, nil
	}
	i.id = deriveBootstrapID(cfg.Peers)
	if err := writeClusterID(cfg.DataDir, clusterIDRecord{ID: i.id.String(), Origin: originBootstrap}); err != nil {
		return nil, err
	}
	return i, nil
}

// current is the ID this host sends when it dials.
func (i *identity) current() ClusterID {
	if i == nil {
		return ClusterID{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.id
}

// errOtherGroup is why a peer was refused.
var errOtherGroup = errors.New("peer belongs to another raft group")

// admit decides whether a peer that sent id on a connection of kind k may
// talk to this host. A host with an ID admits only that ID; a host without
// one admits everyone, and a host waiting to be added adopts the first ID
// a raft connection brings.
func (i *identity) admit(id ClusterID, k byte) error {
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case i.id == id:
		return nil
	case i.id.IsZero() && !i.adopt:
		return nil // a data dir from before cluster IDs
	case i.id.IsZero() && (id.IsZero() || k != connRaft):
		return nil
	case i.id.IsZero():
		if err := writeClusterID(i.dir, clusterIDRecord{ID: id.String(), Origin: originJoined}); err != nil {
			return err
		}
		i.id, i.adopt = id, false
		i.log.Info("joined a raft group: adopted its cluster ID from the leader's connection", "cluster", id.String())
		return nil
	}
	return fmt.Errorf("%w: it sent cluster ID %s, ours is %s", errOtherGroup, id, i.id)
}

// refuse logs a refused peer, at WARN at most once per logEvery per remote
// host.
func (i *identity) refuse(remote net.Addr, err error) {
	i.refused.Add(1)
	host := remote.String()
	if h, _, serr := net.SplitHostPort(host); serr == nil {
		host = h
	}
	lvl := slog.LevelDebug
	if i.warnLim.allow("other group "+host, time.Now()) {
		lvl = slog.LevelWarn
	}
	i.log.Log(context.Background(), lvl, "raft peer refused: it belongs to another raft group (recovered? wipe its data dir and add it with `edged members add`)",
		"remote", remote.String(), "err", err)
}

// readPeerID reads the ID a dialer sends after the kind byte.
func readPeerID(r io.Reader) (ClusterID, error) {
	var c ClusterID
	_, err := io.ReadFull(r, c[:])
	return c, err
}

// preamble is what a dialer writes first: the kind byte and its ID.
func preamble(k byte, id ClusterID) []byte {
	var b bytes.Buffer
	b.WriteByte(k)
	b.Write(id[:])
	return b.Bytes()
}
