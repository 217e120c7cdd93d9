package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/goldentooth/edged/lbpool"
)

// defaultWriteTimeout bounds a write whose context has no deadline.
const defaultWriteTimeout = 5 * time.Second

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return defaultWriteTimeout
}

// applyCmd commits one command on the leader and returns its result.
func (s *Store) applyCmd(k kind, payload any, timeout time.Duration) (applyResult, error) {
	if s.raft.State() != hraft.Leader {
		return applyResult{}, s.notLeader()
	}
	b, err := encode(k, payload)
	if err != nil {
		return applyResult{}, err
	}
	t0 := time.Now()
	f := s.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, hraft.ErrNotLeader) || errors.Is(err, hraft.ErrLeadershipLost) {
			return applyResult{}, fmt.Errorf("%w: %v", s.notLeader(), err)
		}
		return applyResult{}, err
	}
	s.met.commit.Observe(time.Since(t0).Seconds())
	r, _ := f.Response().(applyResult)
	return r, r.Err
}

func (s *Store) write(ctx context.Context, k kind, payload any) (applyResult, error) {
	if s.closing.Load() {
		return applyResult{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return applyResult{}, err
	}
	return s.applyCmd(k, payload, timeoutOf(ctx))
}

// Allocate commits an allocation for req.Key (leader only) and returns it.
// Allocator errors (lbpool.ErrPoolExhausted, ...) are wrapped unchanged.
// It compares before it writes: when the leader's state already holds
// exactly what req would commit, it returns that without a raft entry, so a
// Service whose sync changes nothing (a resync, edged's own status write
// coming back) costs no fsync'd entry and wakes no subscriber.
func (s *Store) Allocate(ctx context.Context, req lbpool.Request) (lbpool.Allocation, error) {
	if cur, ok := s.current(req); ok {
		return cur, nil
	}
	r, err := s.write(ctx, kindAllocate, allocateCmd{Request: req})
	if err != nil {
		return lbpool.Allocation{}, fmt.Errorf("allocate %s: %w", req.Key, err)
	}
	return r.Alloc, nil
}

// Release commits the release of key's addresses (leader only). Releasing
// an unknown key is not an error.
func (s *Store) Release(ctx context.Context, key string) error {
	if _, err := s.write(ctx, kindRelease, releaseCmd{Key: key}); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}

// SetPools commits a new pool configuration and announce eligibility
// (leader only); allocations are kept and the config version increments.
// A nil eligibility uses Config.Eligibility.
func (s *Store) SetPools(ctx context.Context, pools []lbpool.Pool, eligibility map[string][]string) error {
	if eligibility == nil {
		eligibility = s.cfg.Eligibility
	}
	if _, err := s.write(ctx, kindSetPools, setPoolsCmd{Pools: pools, Eligibility: eligibility}); err != nil {
		return fmt.Errorf("set pools: %w", err)
	}
	return nil
}

// AddVoter adds a host to the raft group (leader only). The new host must
// have been started with no Peers and an empty data dir; it adopts the
// group's cluster ID from the leader's first connection. An id or address
// already in the configuration is refused with ErrMemberExists (to move a
// member, remove it first), a malformed one with ErrBadMember.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if err := CheckMember(id, addr); err != nil {
		return fmt.Errorf("add voter %s: %w", id, err)
	}
	if s.raft.State() != hraft.Leader {
		return fmt.Errorf("add voter %s: %w", id, s.notLeader())
	}
	servers, err := s.configuration()
	if err != nil {
		return fmt.Errorf("add voter %s: %w", id, err)
	}
	for _, sv := range servers {
		if string(sv.ID) == id || string(sv.Address) == addr {
			return fmt.Errorf("add voter %s (%s): %w: %s at %s", id, addr, ErrMemberExists, sv.ID, sv.Address)
		}
	}
	if err := s.gateConfigChange(ctx); err != nil {
		return fmt.Errorf("add voter %s: waiting a lease after the last membership change: %w", id, err)
	}
	if err := s.raft.AddVoter(hraft.ServerID(id), hraft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return fmt.Errorf("add voter %s: %w", id, err)
	}
	if ls := s.ldr.Load(); ls != nil {
		s.refreshMembers(ls)
	}
	return nil
}

// RemoveServer removes a host from the raft group (leader only). Its IPs
// move once its lease has expired. The leader itself is refused with
// ErrRemoveLeader (transfer leadership first), an unknown id with
// ErrUnknownMember.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if s.raft.State() != hraft.Leader {
		return fmt.Errorf("remove server %s: %w", id, s.notLeader())
	}
	if id == s.cfg.NodeID {
		return fmt.Errorf("remove server %s: %w", id, ErrRemoveLeader)
	}
	if !s.isMember(id) {
		return fmt.Errorf("remove server %s: %w", id, ErrUnknownMember)
	}
	if err := s.gateConfigChange(ctx); err != nil {
		return fmt.Errorf("remove server %s: waiting a lease after the last membership change: %w", id, err)
	}
	if err := s.raft.RemoveServer(hraft.ServerID(id), 0, timeoutOf(ctx)).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	if ls := s.ldr.Load(); ls != nil {
		s.refreshMembers(ls)
	}
	return nil
}

// current is the allocation req would leave unchanged, read from this
// leader's applied state; only when every entry in its log is applied (a
// new leader may still be applying its predecessor's), so the answer is
// never based on a state the log has already moved past.
func (s *Store) current(req lbpool.Request) (lbpool.Allocation, bool) {
	if !s.IsLeader() || s.raft.AppliedIndex() < s.raft.LastIndex() {
		return lbpool.Allocation{}, false
	}
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.alloc.Current(req)
}
