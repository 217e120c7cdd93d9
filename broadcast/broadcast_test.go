package broadcast

import "testing"

// TestGroup: a burst of notifications wakes each subscriber once, Notify
// never blocks on a subscriber that does not read, and an ended
// subscription is woken no more.
func TestGroup(t *testing.T) {
	var g Group
	a, unsubA := g.Subscribe()
	b, unsubB := g.Subscribe()
	for range 100 {
		g.Notify() // b never reads: must not block
	}
	select {
	case <-a:
	default:
		t.Fatal("a not woken")
	}
	select {
	case <-a:
		t.Fatal("a woken twice for one burst")
	default:
	}
	unsubA()
	unsubA()
	g.Notify()
	select {
	case <-a:
		t.Fatal("a woken after its subscription ended")
	default:
	}
	<-b
	unsubB()
}
