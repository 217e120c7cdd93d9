// Package broadcast is edged's one subscription type: a Group of
// subscribers that Notify wakes when something they read has changed.
//
// It guarantees that Notify never blocks (each subscriber has a channel
// with a buffer of one, so a burst of notifications coalesces into one
// wake-up) and that a subscriber woken after a change sees that change when
// it reads the source: Notify is called after the change is visible.
// Subscribers re-read the source on every wake-up; the channel carries no
// data. This is hashicorp/raft's Observer idea reduced to what edged's
// parts need.
package broadcast

import "sync"

// Group is a set of subscribers. The zero Group is ready to use and safe
// for concurrent use.
type Group struct {
	mu   sync.Mutex
	subs map[int]chan struct{}
	next int
}

// Subscribe returns a channel that receives a value (coalesced) after
// every Notify, and a function that ends the subscription (idempotent).
func (g *Group) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	g.mu.Lock()
	if g.subs == nil {
		g.subs = map[int]chan struct{}{}
	}
	id := g.next
	g.next++
	g.subs[id] = ch
	g.mu.Unlock()
	return ch, func() {
		g.mu.Lock()
		delete(g.subs, id)
		g.mu.Unlock()
	}
}

// Notify wakes every subscriber that is not already due to wake.
func (g *Group) Notify() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ch := range g.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
