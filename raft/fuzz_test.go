package raft

import (
	"bytes"
	"io"
	"testing"

	hraft "github.com/hashicorp/raft"
)

// FuzzFSMApply feeds arbitrary log entries to the state machine: it must
// return an error result, never panic, and stay snapshot-able.
func FuzzFSMApply(f *testing.F) {
	f.Add([]byte(`{"kind":"allocate","payload":{"request":{"Key":"a/b"}}}`))
	f.Add([]byte(`{"kind":"setHost","payload":{"host":{"ID":"h1","Healthy":true}}}`))
	f.Add([]byte(`{"kind":"settle","payload":{"items":[{"ip":"10.4.11.1","owner":"h1","changed":3}]}}`))
	f.Add([]byte(`{"kind":"setPools","payload":{"pools":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFSM(nil)
		m.Apply(&hraft.Log{Index: 1, Data: mustCmd(t, kindSetPools, setPoolsCmd{Pools: refPool()})})
		m.Apply(&hraft.Log{Index: 2, Data: data})
		if _, err := m.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzRestore feeds arbitrary snapshot bytes to Restore: errors, no panic.
func FuzzRestore(f *testing.F) {
	f.Add(snapshotBytes(f, buildFSM(f, 3)))
	f.Add([]byte(`{"format":1,"assignments":[{"IP":"10.0.0.1","Owner":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = newFSM(nil).Restore(io.NopCloser(bytes.NewReader(data)))
	})
}
