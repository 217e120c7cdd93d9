package raft

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldentooth/edged/test/wait"
)

// rawLease is a lease connection a test drives by hand, as a host would.
type rawLease struct {
	t    testing.TB
	conn net.Conn
	enc  *json.Encoder
	dec  *json.Decoder
}

// dialLease opens a lease connection from via (its certificate, its
// dialer) to the host at addr.
func dialLease(t testing.TB, via *Store, addr string) *rawLease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := via.stream.dialKind(ctx, addr, connLease)
	if err != nil {
		t.Fatalf("dial lease %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawLease{t: t, conn: conn, enc: json.NewEncoder(conn), dec: json.NewDecoder(conn)}
}

// renew sends req and returns the answer.
func (r *rawLease) renew(req renewRequest) renewResponse {
	r.t.Helper()
	_ = r.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if err := r.enc.Encode(req); err != nil {
		r.t.Fatalf("send renewal: %v", err)
	}
	var resp renewResponse
	if err := r.dec.Decode(&resp); err != nil {
		r.t.Fatalf("read renewal answer: %v", err)
	}
	return resp
}

// holdVoter stops host hs from sending requests to voter id until the
// returned function is called (it waits for one in flight to finish), so a
// test may send that voter requests as hs without racing its numbers.
func holdVoter(t testing.TB, hs *Store, id string) func() {
	t.Helper()
	var vc *voterConn
	wait.ForBool(t, 2*time.Second, "the request to "+id+" in flight to finish", func() bool {
		hs.lc.mu.Lock()
		defer hs.lc.mu.Unlock()
		vc = hs.lc.conns[id]
		if vc == nil {
			vc = &voterConn{id: id}
			hs.lc.conns[id] = vc
		}
		if vc.busy {
			return false
		}
		vc.busy = true
		return true
	})
	return func() {
		hs.lc.mu.Lock()
		vc.busy = false
		hs.lc.mu.Unlock()
	}
}

// voterRecord returns a copy of what voter v recorded of host h.
func voterRecord(v *Store, h string) hostRecord {
	v.voter.mu.Lock()
	defer v.voter.mu.Unlock()
	if r := v.voter.hosts[h]; r != nil {
		return *r
	}
	return hostRecord{}
}

// tagOf is the voter tag of s's latest configuration.
func tagOf(s *Store) uint64 {
	_, voters := s.latestVoters()
	return votersTag(voters)
}

// followerWithIP returns a follower that owns an IP, and that IP.
func followerWithIP(t testing.TB, l *Store, lid string) (string, netip.Addr) {
	t.Helper()
	for ip, owner := range owners(l) {
		if owner != lid {
			return owner, ip
		}
	}
	t.Fatal("no IP owned by a follower")
	return "", netip.Addr{}
}

func startedCluster(t *testing.T) (*testCluster, string, *Store) {
	t.Helper()
	c := newTestCluster(t, 3, nil)
	c.setPools(refPool(), nil)
	for _, k := range []string{"ns/a", "ns/b", "ns/c", "ns/d", "ns/e", "ns/f"} {
		c.allocate(k)
	}
	c.converged(20 * time.Second)
	lid, l := c.leader(10 * time.Second)
	return c, lid, l
}

// TestLeaseIdentityMismatchRefused: a peer whose certificate (CA-signed,
// for another host) does not name the host it renews as is refused, and the
// leader's view of the victim (drain request, grants, process) is untouched.
// Before identity checks, its second renewal (acking the first) made the
// leader mark the victim draining and forget its grants.
func TestLeaseIdentityMismatchRefused(t *testing.T) {
	c, lid, l := startedCluster(t)
	victim, ip := followerWithIP(t, l, lid)
	var attacker string
	for _, id := range c.ids {
		if id != lid && id != victim {
			attacker = id
		}
	}
	vs := c.store(victim)
	r := dialLease(t, c.store(attacker), c.nodes[lid].cfg.BindAddr)
	for i := range 3 {
		// The victim's own process and numbers far ahead of its own: were
		// the request not refused, it would count as the victim's current.
		resp := r.renew(renewRequest{From: victim, Voters: tagOf(l), Draining: true,
			Incarnation: vs.incarnation, ReqSeq: 1<<40 + uint64(i)})
		if resp.OK || !strings.HasPrefix(resp.Reason, "identity mismatch") {
			t.Fatalf("renewal %d as %s with %s's certificate: ok=%v reason=%q, want an identity mismatch",
				i, victim, attacker, resp.OK, resp.Reason)
		}
	}
	rec := voterRecord(l, victim)
	if rec.draining {
		t.Errorf("a renewal with %s's certificate set %s draining", attacker, victim)
	}
	if !containsIP(rec.ips, ip) {
		t.Errorf("after renewals from %s claiming %s without %s, the voter no longer promises it", attacker, victim, ip)
	}
	if rec.mark.inc != vs.incarnation || rec.mark.seq >= 1<<40 {
		t.Errorf("voter's known request of %s is %+v, want its own process %d and numbers", victim, rec.mark, vs.incarnation)
	}
	// The victim itself still renews.
	wait.ForBool(t, 2*time.Second, victim+" to renew after the attack", func() bool {
		ls, until := vs.LeaseSet(time.Now())
		return slices.Contains(ls, ip) && time.Until(until) > l.cfg.LeaseDuration/2
	})
	c.checkNoOverlap()
}

// TestStaleSequenceRefused: a request with a lower ReqSeq than one a voter
// already handled from the same process (a late request) is refused and
// releases nothing: were it handled, its empty Held would free the host's
// IPs at that voter while the host still counts them.
func TestStaleSequenceRefused(t *testing.T) {
	c, lid, l := startedCluster(t)
	host, ip := followerWithIP(t, l, lid)
	hs := c.store(host)
	release := holdVoter(t, hs, lid)
	resp := l.promise(renewRequest{From: host, Voters: tagOf(l), Held: nil, Draining: true,
		Incarnation: hs.incarnation, ReqSeq: 1})
	release()
	if resp.OK || resp.Reason != "stale request" {
		t.Fatalf("late renewal with ReqSeq 1: ok=%v reason=%q, want refused as a stale request", resp.OK, resp.Reason)
	}
	rec := voterRecord(l, host)
	if !containsIP(rec.ips, ip) {
		t.Errorf("after a stale request from %s without %s, the voter no longer promises it", host, ip)
	}
	if rec.draining {
		t.Errorf("a stale request set %s draining", host)
	}
	wait.ForBool(t, 2*time.Second, host+"'s next renewal to be answered OK", hs.renewOnce)
	c.checkNoOverlap()
}

// dupClient renews as host from a second process with incarnation inc
// over conns (one per voter) for d, every quarter lease, holding what a
// majority promised (leaseOf, as a Store does) and recording its leases as
// dupName so the recorder can compare them with the real host's. It
// returns how many rounds a majority answered OK and how many gave IPs.
func dupClient(t *testing.T, c *testCluster, conns map[string]*rawLease, host, dupName string, inc uint64, seq *uint64, d time.Duration) (ok, withIPs int, reasons map[string]int) {
	t.Helper()
	l := c.store(host).cfg.LeaseDuration
	voters := slices.Sorted(maps.Keys(conns))
	tag := votersTag(voters)
	promises := map[string]promiseFrom{}
	var held []netip.Addr
	var until time.Time
	reasons = map[string]int{}
	end := time.Now().Add(d)
	tick := time.NewTicker(l / 4)
	defer tick.Stop()
	for time.Now().Before(end) {
		good := 0
		for _, v := range voters {
			t0 := time.Now()
			var from []netip.Addr
			if p, ok := promises[v]; ok && p.end.After(t0) {
				from = p.ips
			}
			*seq++
			resp := conns[v].renew(renewRequest{From: host, Voters: tag, Held: from, Incarnation: inc, ReqSeq: *seq})
			if !resp.OK {
				reasons[resp.Reason]++
				continue
			}
			good++
			promises[v] = promiseFrom{tag: tag, ips: sortedIPs(resp.IPs), end: t0.Add(l), sent: t0}
			ips, u := leaseOf(promises, voters, tag, time.Now())
			now := time.Now()
			for _, ip := range held {
				if !slices.Contains(ips, ip) || (u.Before(until) && now.Before(until)) {
					c.rec.LeaseDropped(dupName, ip, now)
				}
			}
			held, until = ips, u
			for _, ip := range ips {
				c.rec.LeaseHeld(dupName, ip, now, until)
			}
		}
		if good > len(voters)/2 {
			ok++
			if len(held) > 0 && time.Now().Before(until) {
				withIPs++
			}
		}
		<-tick.C // pacing like renewLoop's ticker, not synchronisation
	}
	return ok, withIPs, reasons
}

// TestDuplicateNodeNameOneHolder: a second process renewing under a
// follower's name (its certificate, its name) never makes two lease holders.
// An older process is refused while the real one renews; a newer one takes
// over only after the real one's grants ran out, and the real one, older,
// gets the name back once the newer went silent for a lease.
func TestDuplicateNodeNameOneHolder(t *testing.T) {
	c, lid, l := startedCluster(t)
	host, ip := followerWithIP(t, l, lid)
	hs := c.store(host)
	conns := map[string]*rawLease{}
	for _, id := range c.ids {
		conns[id] = dialLease(t, hs, c.nodes[id].cfg.BindAddr)
	}
	var seq uint64

	ok, _, reasons := dupClient(t, c, conns, host, host+"-older", 1, &seq, time.Second)
	if ok > 0 {
		t.Errorf("an older process of %s got %d OK answers (refusals: %v), want none", host, ok, reasons)
	}
	c.checkNoOverlap()

	ok, withIPs, reasons := dupClient(t, c, conns, host, host+"-newer", hs.incarnation+1, &seq, 1500*time.Millisecond)
	if withIPs == 0 {
		t.Errorf("a newer process of %s was never granted its IPs (%d OK, refusals: %v)", host, ok, reasons)
	}
	c.checkNoOverlap()
	for _, r := range conns {
		r.conn.Close()
	}

	wait.ForBool(t, 3*time.Second, host+" to get its IPs back after the newer process went silent", func() bool {
		ips, _ := hs.LeaseSet(time.Now())
		return slices.Contains(ips, ip)
	})
	c.checkNoOverlap()
}

func TestAdmitRequest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const silence = 220 * time.Millisecond
	last := reqMark{inc: 50, seq: 7, at: t0}
	tests := []struct {
		name     string
		known    bool
		inc, seq uint64
		now      time.Time
		want     admission
	}{
		{"first from the name", false, 50, 1, t0, admitNext},
		{"next request", true, 50, 8, t0, admitNext},
		{"same request again", true, 50, 7, t0, refuseStale},
		{"late request", true, 50, 3, t0, refuseStale},
		{"restarted process", true, 60, 1, t0, admitNewProcess},
		{"older process while the newer renews", true, 40, 100, t0.Add(silence - time.Millisecond), refuseOlderProcess},
		{"older process after the newer went silent", true, 40, 1, t0.Add(silence), admitNewProcess},
		{"unnumbered sender below a numbered one", true, 0, 0, t0, refuseOlderProcess}, // promise refuses it first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := admitRequest(last, tt.known, tt.inc, tt.seq, tt.now, silence)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("admitRequest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPeerIdentityVouchesFor(t *testing.T) {
	id := peerIdentity{cn: "edge-1.example.net", dns: []string{"edge-1", "edge-1.lan"}}
	tests := []struct {
		name string
		node string
		want bool
	}{
		{"common name", "edge-1.example.net", true},
		{"DNS SAN", "edge-1", true},
		{"other DNS SAN", "edge-1.lan", true},
		{"another host", "edge-2", false},
		{"case differs", "EDGE-1", false},
		{"prefix", "edge", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id.vouchesFor(tt.node); got != tt.want {
				t.Errorf("vouchesFor(%q) = %v, want %v", tt.node, got, tt.want)
			}
		})
	}
	if (peerIdentity{}).vouchesFor("") {
		t.Error("a certificate without names vouches for the empty name")
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	got := []bool{l.allow("a", t0), l.allow("a", t0.Add(time.Second)), l.allow("b", t0),
		l.allow("a", t0.Add(logEvery))}
	if diff := cmp.Diff([]bool{true, false, true, true}, got); diff != "" {
		t.Errorf("allow (-want +got):\n%s", diff)
	}
}
