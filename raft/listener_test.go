package raft

import (
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// TestUnauthenticatedConnectionsBounded: connections that never handshake
// hold at most maxUnauthenticated slots of a host's raft port; the rest are
// closed at once instead of each keeping a goroutine for handshakeTimeout.
// The group keeps its leader and leases meanwhile (established connections
// are past the bound), and once the flood ends a new TLS connection is
// served at once.
func TestUnauthenticatedConnectionsBounded(t *testing.T) {
	c, lid, l := startedCluster(t)
	addr := c.nodes[lid].cfg.BindAddr
	const extra = 16
	var flood []net.Conn
	defer func() {
		for _, fc := range flood {
			fc.Close()
		}
	}()
	for range maxUnauthenticated + extra {
		fc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		flood = append(flood, fc)
	}
	// Closed by the server: a read ends with EOF or a reset, long before
	// handshakeTimeout; still held: the read deadline passes.
	// Read all at once: a read after its deadline fails without looking.
	deadline := time.Now().Add(time.Second)
	ended := make(chan bool, len(flood))
	for _, fc := range flood {
		_ = fc.SetReadDeadline(deadline)
		go func() {
			var b [1]byte
			_, err := fc.Read(b[:])
			ended <- !errors.Is(err, os.ErrDeadlineExceeded)
		}()
	}
	closed := 0
	for range flood {
		if <-ended {
			closed++
		}
	}
	if closed < extra {
		t.Errorf("server closed %d of %d silent connections within a second, want at least %d (limit %d)",
			closed, len(flood), extra, maxUnauthenticated)
	}
	if n := l.stream.refused.Load(); n < extra {
		t.Errorf("refused counter %d, want at least %d", n, extra)
	}

	// Meanwhile the group works over its established connections.
	host, ip := followerWithIP(t, l, lid)
	hs := c.store(host)
	_, until0 := hs.LeaseSet(time.Now())
	wait.ForBool(t, 2*time.Second, host+" to renew its lease during the flood", func() bool {
		ips, until := hs.LeaseSet(time.Now())
		return slices.Contains(ips, ip) && until.After(until0)
	})
	if id, _ := c.leader(time.Second); id != lid {
		t.Errorf("leader changed from %s to %s during the flood", lid, id)
	}

	for _, fc := range flood {
		fc.Close()
	}
	wait.ForBool(t, 2*time.Second, "the flood's slots to be released", func() bool {
		return l.stream.handshaking.Load() == 0
	})
	r := dialLease(t, hs, addr)
	release := holdVoter(t, hs, lid) // one request at a time per voter, as in renewWith
	held, _ := hs.heldFrom(lid, time.Now())
	resp := r.renew(renewRequest{From: host, Voters: tagOf(hs), Held: held,
		Incarnation: hs.incarnation, ReqSeq: hs.reqSeq.Add(1)})
	release()
	if !resp.OK {
		t.Errorf("renewal over a new connection after the flood refused: %s", resp.Reason)
	}
	c.checkNoOverlap()
}
