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

// commandVersion is the encoding of the commands this code writes. Entries
// without "v" were written before the field existed (edged 0.1) and read as
// version 1. Raise it only for a change older code would misread; until
// every host runs the new code, keep writing the old version (an upgrade is
// a rolling restart, so followers with the older binary replay the same
// entries). raft/testdata/compat keeps each released encoding, and
// TestCompat replays them.
const commandVersion = 1

// envelope is the typed command written to the raft log as JSON.
type envelope struct {
	Kind kind `json:"kind"`
	// V is the command encoding (commandVersion); 0 means 1.
	V       int             `json:"v,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// UnmarshalJSON refuses an envelope from a newer encoding than this code
// knows: a host that has not been upgraded yet fails that entry with
// ErrBadCommand (logged by Apply's caller) instead of half applying it.
func (e *envelope) UnmarshalJSON(b []byte) error {
	type plain envelope
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.V > commandVersion {
		return fmt.Errorf("command %q has encoding version %d; this edged reads up to %d: upgrade it", p.Kind, p.V, commandVersion)
	}
	*e = envelope(p)
	return nil
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
	return json.Marshal(envelope{Kind: k, V: commandVersion, Payload: p})
}

// applyResult is what Apply returns through the raft ApplyFuture.
type applyResult struct {
	Alloc lbpool.Allocation
	Err   error
}
