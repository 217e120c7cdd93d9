package raft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"

	hraft "github.com/hashicorp/raft"
)

// Membership errors callers test with errors.Is.
var (
	// ErrUnknownMember is returned for a host ID that is not in the raft
	// configuration.
	ErrUnknownMember = errors.New("no such raft member")
	// ErrMemberExists is returned by AddVoter for an ID or address already
	// in the configuration.
	ErrMemberExists = errors.New("raft member already exists")
	// ErrRemoveLeader is returned by RemoveServer for the leader itself:
	// removing it would leave the group without a leader until an election,
	// and the write could not be confirmed by the host that made it.
	ErrRemoveLeader = errors.New("refusing to remove the leader; transfer leadership first (edged members transfer-leadership)")
	// ErrBadMember is returned for an ID or address that cannot be a member.
	ErrBadMember = errors.New("invalid raft member")
)

// NotLeaderError is the ErrNotLeader of a write refused on a follower: it
// names the leader this host knows (empty while none is known), so the
// caller can say where to run the write. errors.Is(err, ErrNotLeader) holds.
type NotLeaderError struct {
	Leader     string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return ErrNotLeader.Error() + " (no leader known: is a majority of the group up?)"
	}
	return fmt.Sprintf("%s; the leader is %s (%s)", ErrNotLeader, e.Leader, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// notLeader is the error of a leader-only call on this host now.
func (s *Store) notLeader() error {
	id, addr := s.Leader()
	return &NotLeaderError{Leader: id, LeaderAddr: addr}
}

// Member is one server of the raft configuration with what the replicated
// state says about it, as this host sees it.
type Member struct {
	ID      string
	Address string
	Voter   bool
	Leader  bool
	// Healthy, Draining and AdminDrained are the host's HostState (all
	// false for a host the state does not know yet).
	Healthy      bool
	Draining     bool
	AdminDrained bool
	// Owned counts the IPs assigned to the host.
	Owned int
}

// Members lists the raft configuration (this host's latest, committed or
// not) with each host's state, sorted by ID. It works on any host.
func (s *Store) Members() ([]Member, error) {
	servers, err := s.configuration()
	if err != nil {
		return nil, err
	}
	leader, _ := s.Leader()
	s.fsm.mu.RLock()
	out := make([]Member, 0, len(servers))
	for _, sv := range servers {
		id := string(sv.ID)
		h := s.fsm.hosts[id]
		out = append(out, Member{ID: id, Address: string(sv.Address), Voter: sv.Suffrage == hraft.Voter,
			Leader: id == leader, Healthy: h.Healthy, Draining: h.Draining, AdminDrained: h.AdminDrained,
			Owned: len(s.fsm.byOwner[id])})
	}
	s.fsm.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Store) configuration() ([]hraft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// CheckMember reports whether id and addr can name a new member: id
// non-empty (the rule for node.name) without spaces or control characters,
// addr host:port with a numeric port.
func CheckMember(id, addr string) error {
	if id == "" {
		return fmt.Errorf("%w: empty id (the new host's node.name)", ErrBadMember)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: id %q contains a space or control character", ErrBadMember, id)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%w: address %q is not host:port", ErrBadMember, addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%w: address %q: port %q is not 1-65535", ErrBadMember, addr, port)
	}
	return nil
}

// TransferLeadership hands leadership to the voter to, or to the most
// up-to-date other voter when to is empty (leader only). It returns once
// the transfer finished or failed.
func (s *Store) TransferLeadership(ctx context.Context, to string) error {
	if s.raft.State() != hraft.Leader {
		return fmt.Errorf("transfer leadership: %w", s.notLeader())
	}
	if to == "" {
		if err := s.raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("transfer leadership: %w", err)
		}
		return nil
	}
	servers, err := s.configuration()
	if err != nil {
		return err
	}
	for _, sv := range servers {
		if string(sv.ID) != to {
			continue
		}
		if to == s.cfg.NodeID {
			return nil // already leads
		}
		if err := s.raft.LeadershipTransferToServer(sv.ID, sv.Address).Error(); err != nil {
			return fmt.Errorf("transfer leadership to %s: %w", to, err)
		}
		return nil
	}
	return fmt.Errorf("transfer leadership to %s: %w", to, ErrUnknownMember)
}

// SetAdminDrain sets (drain) or clears a member's AdminDrained flag
// through the log (leader only): while it is set the host is given no IPs,
// whatever its health, across restarts and elections.
func (s *Store) SetAdminDrain(ctx context.Context, host string, drain bool) error {
	if s.raft.State() != hraft.Leader {
		return fmt.Errorf("drain %s: %w", host, s.notLeader())
	}
	if !s.isMember(host) {
		return fmt.Errorf("drain %s: %w", host, ErrUnknownMember)
	}
	if _, err := s.write(ctx, kindAdminDrain, adminDrainCmd{ID: host, Drain: drain}); err != nil {
		return fmt.Errorf("drain %s: %w", host, err)
	}
	if drain {
		s.cfg.Logger.Info("host drained by an operator, handing its IPs over", "peer", host)
	} else {
		s.cfg.Logger.Info("host undrained by an operator", "peer", host)
	}
	return nil
}

func (s *Store) isMember(id string) bool {
	servers, err := s.configuration()
	if err != nil {
		return false
	}
	for _, sv := range servers {
		if string(sv.ID) == id {
			return true
		}
	}
	return false
}
