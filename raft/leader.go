package raft

import (
	"net/netip"
	"sort"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Leader loop timings.
const (
	// leaderTick is how often the leader re-checks host health and settles
	// moved IPs; it adds at most this much to failover.
	leaderTick = 10 * time.Millisecond
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
	t := time.NewTicker(leaderTick)
	defer t.Stop()
	var lastMembers time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.raft.State() != hraft.Leader {
			if s.ldr.Load() != nil {
				s.ldr.Store(nil)
				s.cfg.Logger.Info("raft leadership lost")
			}
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
			ls = newLeaderState(term, start, s.cfg.LeaseDuration, s.cfg.ClockDriftMargin)
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
	}
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

// reconcile turns what the leader observed into commands: host health and
// draining, hosts that left the configuration, leave requests, and settling
// IPs whose old leases have certainly expired.
func (s *Store) reconcile(ls *leaderState) {
	now := time.Now()
	l, margin := s.cfg.LeaseDuration, s.cfg.ClockDriftMargin
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
		want := HostState{ID: id, Healthy: cur.Healthy, Draining: ls.drainReq[id]}
		if id == self {
			want.Healthy, want.Draining = true, s.draining.Load()
		} else {
			heard := ls.contact[id]
			alive := now.Sub(heard) < l
			// Silent: no renewal for L since we started listening, and every
			// lease we granted it has run out with margin.
			since := heard
			if since.Before(ls.start) {
				since = ls.start
			}
			silent := now.Sub(since) >= l+margin && !now.Before(ls.maxExpiry(id).Add(margin))
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
		if ls.leaveReq[id] && id != self {
			leaves = append(leaves, id)
		}
	}
	for id := range hosts {
		if _, ok := ls.servers[id]; !ok {
			removes = append(removes, id)
		}
	}
	if !now.Before(ls.fenceUntil) {
		for _, it := range unsettled {
			if !ls.otherHolds(it.IP, it.Owner, now, margin) {
				settle = append(settle, it)
			}
		}
	}
	ls.mu.Unlock()

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
		if err := s.raft.RemoveServer(hraft.ServerID(id), 0, commandTimeout).Error(); err != nil {
			s.cfg.Logger.Warn("remove leaving host failed", "peer", id, "err", err)
			continue
		}
		s.cfg.Logger.Info("host left the raft group", "peer", id)
		ls.mu.Lock()
		delete(ls.leaveReq, id)
		ls.mu.Unlock()
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
