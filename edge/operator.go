package edge

import (
	"context"
	"errors"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/raft"
)

// storeOperator serves the admin socket's member and drain endpoints from
// the raft store, translating its errors into the admin API's classes.
type storeOperator struct{ store *raft.Store }

var _ admin.Operator = storeOperator{}

func (o storeOperator) Members() ([]admin.Member, error) {
	ms, err := o.store.Members()
	if err != nil {
		return nil, err
	}
	out := make([]admin.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, admin.Member{ID: m.ID, Address: m.Address, Voter: m.Voter, Leader: m.Leader,
			Healthy: m.Healthy, Draining: m.Draining, AdminDrained: m.AdminDrained, Announce: m.Owned})
	}
	return out, nil
}

func (o storeOperator) AddMember(ctx context.Context, id, address string) error {
	return adminError(o.store.AddVoter(ctx, id, address))
}

func (o storeOperator) RemoveMember(ctx context.Context, id string) error {
	return adminError(o.store.RemoveServer(ctx, id))
}

func (o storeOperator) TransferLeadership(ctx context.Context, to string) error {
	return adminError(o.store.TransferLeadership(ctx, to))
}

func (o storeOperator) SetDrain(ctx context.Context, host string, drain bool) error {
	if host == "" {
		host = o.store.ID()
	}
	return adminError(o.store.SetAdminDrain(ctx, host, drain))
}

// adminError classifies a raft error for the admin API; nil stays nil.
func adminError(err error) error {
	var nle *raft.NotLeaderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nle):
		return &admin.NotLeaderError{Leader: nle.Leader, Address: nle.LeaderAddr}
	case errors.Is(err, raft.ErrBadMember):
		return classified{admin.ErrInvalid, err}
	case errors.Is(err, raft.ErrUnknownMember):
		return classified{admin.ErrNotFound, err}
	case errors.Is(err, raft.ErrMemberExists), errors.Is(err, raft.ErrRemoveLeader):
		return classified{admin.ErrConflict, err}
	}
	return err
}

// classified is err, also matching class with errors.Is, without adding
// the class to the message the operator reads.
type classified struct{ class, err error }

func (c classified) Error() string        { return c.err.Error() }
func (c classified) Unwrap() error        { return c.err }
func (c classified) Is(target error) bool { return target == c.class }
