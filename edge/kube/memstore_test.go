package kube

import (
	"context"
	"reflect"
	"sync"

	"github.com/goldentooth/edged/lbpool"
	"github.com/goldentooth/edged/raft"
)

// memStore is an in-process Store over *lbpool.Allocator for tests.
type memStore struct {
	mu      sync.Mutex
	a       *lbpool.Allocator
	leader  bool
	version uint64
	epoch   uint64 // FreeEpoch: releases, changed allocations, pool changes
	subs    map[int]chan struct{}
	next    int
}

func newMemStore(pools []lbpool.Pool) (*memStore, error) {
	a, err := lbpool.New(pools)
	if err != nil {
		return nil, err
	}
	return &memStore{a: a, leader: true, subs: map[int]chan struct{}{}}, nil
}

func (m *memStore) notify() {
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (m *memStore) Allocate(_ context.Context, req lbpool.Request) (lbpool.Allocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.a.Lookup(req.Key)
	al, err := m.a.Allocate(req)
	if err == nil {
		if had && !reflect.DeepEqual(old, al) {
			m.epoch++
		}
		m.notify()
	}
	return al, err
}

func (m *memStore) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.a.Release(key); ok {
		m.epoch++
	}
	m.notify()
	return nil
}

func (m *memStore) Lookup(key string) (lbpool.Allocation, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.a.Lookup(key)
}

func (m *memStore) State() raft.View {
	m.mu.Lock()
	defer m.mu.Unlock()
	return raft.View{ConfigVersion: m.version, Pools: m.a.Pools(), Allocations: m.a.Allocations(), Stats: m.a.Stats(), IsLeader: m.leader}
}

func (m *memStore) FreeEpoch() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.epoch }

// setPools replaces the pools as a raft SetPools would.
func (m *memStore) setPools(pools []lbpool.Pool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.a.SetPools(pools); err != nil {
		return err
	}
	m.version++
	m.epoch++
	m.notify()
	return nil
}

func (m *memStore) IsLeader() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.leader }

func (m *memStore) StateChanges() (<-chan struct{}, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{}, 1)
	id := m.next
	m.next++
	m.subs[id] = ch
	return ch, func() { m.mu.Lock(); delete(m.subs, id); m.mu.Unlock() }
}
