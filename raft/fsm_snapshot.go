package raft

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"

	hraft "github.com/hashicorp/raft"

	"github.com/goldentooth/edged/lbpool"
)

// snapshotFormat versions the snapshot encoding. A snapshot of another
// format is refused on restore (ErrBadCommand); format 1 is every snapshot
// edged has written so far (raft/testdata/compat).
const snapshotFormat = 1

// snapshotData is the whole state in a deterministic, sorted form.
type snapshotData struct {
	Format      int                 `json:"format"`
	Applied     uint64              `json:"applied"`
	Version     uint64              `json:"version"`
	Pools       []lbpool.Pool       `json:"pools"`
	Eligibility map[string][]string `json:"eligibility"`
	Allocations []lbpool.Allocation `json:"allocations"`
	Hosts       []HostState         `json:"hosts"`
	Assignments []IPAssignment      `json:"assignments"`
}

// IPAssignment is one IP's assignment in a View or snapshot.
type IPAssignment struct {
	IP   netip.Addr
	Pool string
	Assignment
}

// snapshotData copies the state; callers hold f.mu.
func (f *fsm) snapshotData() snapshotData {
	return snapshotData{
		Format:      snapshotFormat,
		Applied:     f.applied,
		Version:     f.version,
		Pools:       f.alloc.Pools(),
		Eligibility: copyElig(f.eligibility),
		Allocations: f.alloc.Allocations(),
		Hosts:       f.sortedHosts(),
		Assignments: f.sortedAssignments(),
	}
}

func (f *fsm) sortedAssignments() []IPAssignment {
	out := make([]IPAssignment, 0, len(f.assign))
	for ip, a := range f.assign {
		out = append(out, IPAssignment{IP: ip, Pool: f.poolOf[ip], Assignment: a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// fromSnapshot builds a fresh fsm (without notify) from snapshot data.
func fromSnapshot(d snapshotData) (*fsm, error) {
	if d.Format != snapshotFormat {
		return nil, fmt.Errorf("%w: snapshot format %d, want %d", ErrBadCommand, d.Format, snapshotFormat)
	}
	nf := newFSM(nil)
	a, err := lbpool.New(d.Pools)
	if err != nil {
		return nil, fmt.Errorf("pools: %w", err)
	}
	if err := a.Restore(d.Allocations); err != nil {
		return nil, fmt.Errorf("allocations: %w", err)
	}
	nf.alloc, nf.version, nf.applied = a, d.Version, d.Applied
	nf.eligibility = copyElig(d.Eligibility)
	for _, h := range d.Hosts {
		nf.hosts[h.ID] = h
	}
	for _, as := range d.Assignments {
		nf.poolOf[as.IP] = as.Pool
		nf.setAssign(as.IP, as.Assignment)
	}
	return nf, nil
}

// fsmSnapshot is a point-in-time copy ready to persist.
type fsmSnapshot struct{ data snapshotData }

// Persist writes the snapshot and cancels the sink on any error.
func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: the copy is garbage collected.
func (s *fsmSnapshot) Release() {}
