package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"sort"
	"sync"

	hraft "github.com/hashicorp/raft"

	"github.com/goldentooth/edged/lbpool"
)

// ErrBadCommand is returned (through the apply future) for a log entry that
// does not decode; it is never expected from our own writers.
var ErrBadCommand = errors.New("undecodable raft command")

// Assignment says which host announces an IP.
type Assignment struct {
	Owner string
	// Settled means every lease for this IP held by another host has expired;
	// a new leader may grant it at once.
	Settled bool
	// Changed is the log index at which Owner last changed.
	Changed uint64
}

// fsm is the replicated state machine. All fields are guarded by mu.
type fsm struct {
	mu          sync.RWMutex
	version     uint64
	alloc       *lbpool.Allocator
	eligibility map[string][]string
	hosts       map[string]HostState
	assign      map[netip.Addr]Assignment
	poolOf      map[netip.Addr]string
	byOwner     map[string]map[netip.Addr]struct{}
	unsettled   map[netip.Addr]struct{}
	applied     uint64
	// freeEpoch counts changes after which an allocation that failed may
	// succeed: an address released or moved, an allocation's sharing
	// terms changed, pools set, a snapshot restored. A local hint, not part
	// of the replicated state.
	freeEpoch uint64
	notify    func()
	// onConfig is called for every committed configuration entry.
	onConfig func()
}

func newFSM(notify func()) *fsm {
	a, err := lbpool.New(nil)
	if err != nil {
		panic(fmt.Sprintf("lbpool.New(nil): %v", err))
	}
	return &fsm{
		alloc: a, hosts: map[string]HostState{}, eligibility: map[string][]string{},
		assign: map[netip.Addr]Assignment{}, poolOf: map[netip.Addr]string{},
		byOwner: map[string]map[netip.Addr]struct{}{}, unsettled: map[netip.Addr]struct{}{},
		notify: notify,
	}
}

// Apply is the single dispatcher for log entries. It is deterministic: no
// clocks, no I/O, no map-order dependent output.
func (f *fsm) Apply(l *hraft.Log) any {
	var e envelope
	if err := json.Unmarshal(l.Data, &e); err != nil {
		return applyResult{Err: fmt.Errorf("%w: %v", ErrBadCommand, err)}
	}
	f.mu.Lock()
	r := f.dispatch(l.Index, e)
	f.applied = l.Index
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return r
}

func (f *fsm) dispatch(idx uint64, e envelope) applyResult {
	dec := func(v any) error {
		if err := json.Unmarshal(e.Payload, v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadCommand, e.Kind, err)
		}
		return nil
	}
	switch e.Kind {
	case kindAllocate:
		var c allocateCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		old, had := f.alloc.Lookup(c.Request.Key)
		a, err := f.alloc.Allocate(c.Request)
		if err != nil {
			return applyResult{Err: err}
		}
		if had && !reflect.DeepEqual(old, a) {
			f.freeEpoch++
		}
		f.replaceIPs(idx, old, a)
		return applyResult{Alloc: a}
	case kindRelease:
		var c releaseCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		if old, ok := f.alloc.Release(c.Key); ok {
			f.replaceIPs(idx, old, lbpool.Allocation{})
			f.freeEpoch++
		}
	case kindSetPools:
		var c setPoolsCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		if err := f.alloc.SetPools(c.Pools); err != nil {
			return applyResult{Err: err}
		}
		f.eligibility = copyElig(c.Eligibility)
		f.version++
		f.freeEpoch++
		f.reassignAll(idx)
	case kindSetHost:
		var c setHostCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		// setHost carries what the leader observed (health, draining);
		// the operator's flag is only ever changed by adminDrain.
		h := c.Host
		h.AdminDrained = f.hosts[h.ID].AdminDrained
		f.hosts[h.ID] = h
		f.reassignAll(idx)
	case kindAdminDrain:
		var c adminDrainCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		h, ok := f.hosts[c.ID]
		if !ok {
			h = HostState{ID: c.ID}
		}
		h.AdminDrained = c.Drain
		f.hosts[c.ID] = h
		f.reassignAll(idx)
	case kindRemoveHost:
		var c removeHostCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		delete(f.hosts, c.ID)
		f.reassignAll(idx)
	case kindSettle:
		var c settleCmd
		if err := dec(&c); err != nil {
			return applyResult{Err: err}
		}
		for _, it := range c.Items {
			a, ok := f.assign[it.IP]
			if ok && a.Owner == it.Owner && a.Changed == it.Changed {
				a.Settled = true
				f.setAssign(it.IP, a)
			}
		}
	default:
		return applyResult{Err: fmt.Errorf("%w: unknown kind %q", ErrBadCommand, e.Kind)}
	}
	return applyResult{}
}

// replaceIPs moves assignment bookkeeping from old's IPs to cur's IPs.
func (f *fsm) replaceIPs(idx uint64, old, cur lbpool.Allocation) {
	keep := map[netip.Addr]bool{}
	for _, ip := range cur.IPs {
		keep[ip] = true
	}
	for _, ip := range old.IPs {
		if !keep[ip] || old.Pool != cur.Pool {
			f.dropIP(ip)
		}
	}
	hosts := f.sortedHosts()
	for _, ip := range cur.IPs {
		f.poolOf[ip] = cur.Pool
		f.reassign(idx, ip, hosts)
	}
}

func (f *fsm) dropIP(ip netip.Addr) {
	if a, ok := f.assign[ip]; ok {
		delete(f.byOwner[a.Owner], ip)
	}
	delete(f.assign, ip)
	delete(f.poolOf, ip)
	delete(f.unsettled, ip)
}

func (f *fsm) reassign(idx uint64, ip netip.Addr, hosts []HostState) {
	owner := PickOwner(ip, f.poolOf[ip], hosts, f.eligibility)
	cur, ok := f.assign[ip]
	if ok && cur.Owner == owner {
		return
	}
	f.setAssign(ip, Assignment{Owner: owner, Changed: idx})
}

func (f *fsm) setAssign(ip netip.Addr, a Assignment) {
	if old, ok := f.assign[ip]; ok {
		delete(f.byOwner[old.Owner], ip)
	}
	f.assign[ip] = a
	m := f.byOwner[a.Owner]
	if m == nil {
		m = map[netip.Addr]struct{}{}
		f.byOwner[a.Owner] = m
	}
	m[ip] = struct{}{}
	if a.Settled || a.Owner == "" {
		delete(f.unsettled, ip)
	} else {
		f.unsettled[ip] = struct{}{}
	}
}

func (f *fsm) reassignAll(idx uint64) {
	hosts := f.sortedHosts()
	for _, a := range f.alloc.Allocations() {
		for _, ip := range a.IPs {
			f.poolOf[ip] = a.Pool
			f.reassign(idx, ip, hosts)
		}
	}
}

func (f *fsm) sortedHosts() []HostState {
	out := make([]HostState, 0, len(f.hosts))
	for _, h := range f.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func copyElig(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if len(v) > 0 {
			s := append([]string(nil), v...)
			sort.Strings(s)
			out[k] = s
		}
	}
	return out
}

// Snapshot copies the state under the read lock; Persist encodes the copy
// concurrently with further Applies.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{data: f.snapshotData()}, nil
}

// Restore discards all state and replaces it with the snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var d snapshotData
	if err := json.NewDecoder(rc).Decode(&d); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	nf, err := fromSnapshot(d)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	f.version, f.alloc, f.eligibility = nf.version, nf.alloc, nf.eligibility
	f.hosts, f.assign, f.poolOf, f.byOwner, f.unsettled = nf.hosts, nf.assign, nf.poolOf, nf.byOwner, nf.unsettled
	f.applied = d.Applied
	f.freeEpoch++
	f.mu.Unlock()
	if f.notify != nil {
		f.notify()
	}
	return nil
}
