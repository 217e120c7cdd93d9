package raft

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// leaderState is what a leader keeps in memory during its term: the
// configuration it last read. Leases are not its business (voter.go); it
// turns what its own voter heard from the hosts into commands.
type leaderState struct {
	term  uint64
	start time.Time

	mu      sync.Mutex
	voters  []string
	servers map[string]string
}

func newLeaderState(term uint64, start time.Time) *leaderState {
	return &leaderState{term: term, start: start, servers: map[string]string{}}
}

// Leader loop timings.
const (
	// leaderTick is how often the leader re-checks host health and settles
	// moved IPs; it adds at most this much to failover.
	leaderTick = 10 * time.Millisecond
	// idleTick bounds how long the loop sleeps when nothing is due: the
	// leader computes when reconcile could next have work (a host's lease
	// running out, see nextReconcile) and is woken early by renewals and
	// applies; a follower is woken by raft's leadership signal.
	idleTick = 100 * time.Millisecond
	// membersRefresh is how often the leader re-reads the raft configuration
	// (membership changes made through the Store refresh it at once).
	membersRefresh = 250 * time.Millisecond
	// commandTimeout bounds one internal raft write.
	commandTimeout = 2 * time.Second
	// settleBatch caps one Settle command.
	settleBatch = 1024
)

func (s *Store) leaderLoop() {
	defer s.wg.Done()
	t := time.NewTimer(leaderTick)
	defer t.Stop()
	leaderCh := s.raft.LeaderCh()
	var lastMembers time.Time
	wait := leaderTick
	for {
		t.Reset(wait)
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.reconcileNow:
		case <-leaderCh:
		}
		wait = leaderTick
		if s.raft.State() != hraft.Leader {
			if s.ldr.Load() != nil {
				s.ldr.Store(nil)
				s.cfg.Logger.Info("raft leadership lost")
			}
			wait = idleTick
			continue
		}
		term := s.raft.CurrentTerm()
		ls := s.ldr.Load()
		if ls == nil || ls.term != term {
			start := time.Now()
			// Apply everything committed before granting anything.
			if err := s.raft.Barrier(commandTimeout).Error(); err != nil {
				s.cfg.Logger.Warn("raft barrier after election failed", "err", err)
				continue
			}
			ls = newLeaderState(term, start)
			// The latest configuration may have been committed just now.
			s.configChanged()
			s.refreshMembers(ls)
			lastMembers = time.Now()
			s.ldr.Store(ls)
			s.cfg.Logger.Info("raft leadership acquired", "term", term)
			s.kickRenew()
		}
		if time.Since(lastMembers) > membersRefresh {
			s.refreshMembers(ls)
			lastMembers = time.Now()
		}
		s.reconcile(ls)
		wait = s.nextReconcile(ls, time.Now())
	}
}

// nextReconcile is how long the leader may sleep before reconcile could
// have work that no request or apply announces (those wake the loop): the
// moment a host could be declared silent (its last request plus the
// lease). While
// IPs wait to be settled, or hosts leave or are removed, it keeps polling
// every leaderTick. The result is within [leaderTick, idleTick]; waking
// early is harmless, reconcile only acts on the conditions it checks
// itself.
func (s *Store) nextReconcile(ls *leaderState, now time.Time) time.Duration {
	l := s.cfg.LeaseDuration
	s.fsm.mu.RLock()
	pending := len(s.fsm.unsettled) > 0
	known := make(map[string]bool, len(s.fsm.hosts))
	for id, h := range s.fsm.hosts {
		known[id] = h.Healthy
	}
	s.fsm.mu.RUnlock()
	if pending {
		return leaderTick
	}
	deadline := now.Add(idleTick)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(known) != len(ls.servers) {
		return leaderTick // hosts to add or remove
	}
	for id := range ls.servers {
		healthy, ok := known[id]
		hv := s.voter.view(id)
		if !ok || hv.leave {
			return leaderTick
		}
		if id == s.cfg.NodeID || !healthy {
			continue // an unhealthy host's request wakes the loop (promise)
		}
		if at := hv.heard.Add(l); at.Before(deadline) {
			deadline = at
		}
	}
	return min(max(deadline.Sub(now), leaderTick), idleTick)
}

func (s *Store) refreshMembers(ls *leaderState) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return
	}
	var voters []string
	servers := map[string]string{}
	for _, sv := range f.Configuration().Servers {
		servers[string(sv.ID)] = string(sv.Address)
		if sv.Suffrage == hraft.Voter {
			voters = append(voters, string(sv.ID))
		}
	}
	sort.Strings(voters)
	ls.mu.Lock()
	ls.voters, ls.servers = voters, servers
	ls.mu.Unlock()
}

// reconcile turns what the leader's own voter heard into commands: host
// health and draining, hosts that left the configuration, leave requests,
// and settling IPs their new owner holds.
func (s *Store) reconcile(ls *leaderState) {
	now := time.Now()
	l := s.cfg.LeaseDuration
	self := s.cfg.NodeID

	s.fsm.mu.RLock()
	hosts := make(map[string]HostState, len(s.fsm.hosts))
	for id, h := range s.fsm.hosts {
		hosts[id] = h
	}
	unsettled := make([]settleItem, 0, len(s.fsm.unsettled))
	for ip := range s.fsm.unsettled {
		a := s.fsm.assign[ip]
		unsettled = append(unsettled, settleItem{IP: ip, Owner: a.Owner, Changed: a.Changed})
	}
	s.fsm.mu.RUnlock()

	var cmds []setHostCmd
	views := map[string]hostView{}
	var removes []string
	var leaves []string
	var settle []settleItem
	ls.mu.Lock()
	if len(ls.servers) == 0 {
		// Configuration not read yet: never mistake that for "no hosts".
		ls.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(ls.servers))
	for id := range ls.servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cur, known := hosts[id]
		hv := s.voter.view(id)
		views[id] = hv
		want := HostState{ID: id, Healthy: cur.Healthy, Draining: hv.draining, AdminDrained: cur.AdminDrained}
		if id == self {
			want.Healthy, want.Draining = true, s.wantsDrain()
		} else {
			// Silent: no request for a lease since our voter started
			// listening (its promise to the host ran out). Not a safety
			// matter: a host holds only what a majority promised it, and
			// the new owner is promised an IP only once the old promises
			// ran out plus the margin. So the move is committed while
			// those run out, and a new leader needs no fence: its voter
			// listened all along.
			alive := now.Sub(hv.heard) < l
			silent := !alive
			switch {
			case alive:
				want.Healthy = true
			case silent:
				want.Healthy = false
			}
		}
		if !known || want != cur {
			cmds = append(cmds, setHostCmd{Host: want})
		}
		if hv.leave && id != self {
			leaves = append(leaves, id)
		}
	}
	for id := range hosts {
		if _, ok := ls.servers[id]; !ok {
			removes = append(removes, id)
		}
	}
	ls.mu.Unlock()
	// Settled: the new owner reported holding the IP (a majority promised
	// it, so nobody else holds it). Informational since voter leases: no
	// promise depends on it.
	for _, it := range unsettled {
		hv, ok := views[it.Owner]
		if !ok {
			hv = s.voter.view(it.Owner)
			views[it.Owner] = hv
		}
		if containsIP(hv.leased, it.IP) {
			settle = append(settle, it)
		}
	}

	for _, c := range cmds {
		s.logHostChange(hosts[c.Host.ID], c.Host)
		if _, err := s.applyCmd(kindSetHost, c, commandTimeout); err != nil {
			return
		}
	}
	sort.Strings(removes)
	for _, id := range removes {
		if _, err := s.applyCmd(kindRemoveHost, removeHostCmd{ID: id}, commandTimeout); err != nil {
			return
		}
	}
	for _, id := range leaves {
		if !s.configChangeReady(now) {
			break
		}
		err := s.raft.RemoveServer(hraft.ServerID(id), 0, commandTimeout).Error()
		s.configChanged()
		if err != nil {
			s.cfg.Logger.Warn("remove leaving host failed", "peer", id, "err", err)
			continue
		}
		s.cfg.Logger.Info("host left the raft group", "peer", id)
		s.refreshMembers(ls)
	}
	sort.Slice(settle, func(i, j int) bool { return settle[i].IP.Less(settle[j].IP) })
	for len(settle) > 0 {
		n := min(len(settle), settleBatch)
		if _, err := s.applyCmd(kindSettle, settleCmd{Items: settle[:n]}, commandTimeout); err != nil {
			return
		}
		settle = settle[n:]
	}
}

func (s *Store) logHostChange(old, cur HostState) {
	switch {
	case old.Healthy && !cur.Healthy:
		s.cfg.Logger.Warn("host lease expired, moving its IPs", "peer", cur.ID)
	case !old.Healthy && cur.Healthy:
		s.cfg.Logger.Info("host healthy", "peer", cur.ID)
	case !old.Draining && cur.Draining:
		s.cfg.Logger.Info("host draining, handing its IPs over", "peer", cur.ID)
	}
}

// ownedBy lists the IPs the state assigns to host (tests, Close).
func (s *Store) ownedBy(host string) []netip.Addr {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	out := make([]netip.Addr, 0, len(s.fsm.byOwner[host]))
	for ip := range s.fsm.byOwner[host] {
		out = append(out, ip)
	}
	return out
}
