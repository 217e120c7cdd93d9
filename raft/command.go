package raft

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/goldentooth/edged/lbpool"
)

// kind names a command type in the log; values are stored forever, so they
// never change meaning.
type kind string

const (
	kindAllocate   kind = "allocate"
	kindRelease    kind = "release"
	kindSetPools   kind = "setPools"
	kindSetHost    kind = "setHost"
	kindRemoveHost kind = "removeHost"
	kindSettle     kind = "settle"
	kindAdminDrain kind = "adminDrain"
)

// envelope is the typed command written to the raft log as JSON.
type envelope struct {
	Kind    kind            `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

type allocateCmd struct {
	Request lbpool.Request `json:"request"`
}

type releaseCmd struct {
	Key string `json:"key"`
}

type setPoolsCmd struct {
	Pools       []lbpool.Pool       `json:"pools"`
	Eligibility map[string][]string `json:"eligibility"`
}

type setHostCmd struct {
	Host HostState `json:"host"`
}

// adminDrainCmd sets or clears a host's AdminDrained flag.
type adminDrainCmd struct {
	ID    string `json:"id"`
	Drain bool   `json:"drain"`
}

type removeHostCmd struct {
	ID string `json:"id"`
}

// settleItem marks ip's current assignment as fenced: no older lease for it
// can still be held. Changed guards against settling a later reassignment.
type settleItem struct {
	IP      netip.Addr `json:"ip"`
	Owner   string     `json:"owner"`
	Changed uint64     `json:"changed"`
}

type settleCmd struct {
	Items []settleItem `json:"items"`
}

// encode builds the log bytes for a command.
func encode(k kind, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", k, err)
	}
	return json.Marshal(envelope{Kind: k, Payload: p})
}

// applyResult is what Apply returns through the raft ApplyFuture.
type applyResult struct {
	Alloc lbpool.Allocation
	Err   error
}
