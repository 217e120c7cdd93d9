package raft

import (
	"cmp"
	"slices"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Prompt elections.
//
// hashicorp/raft's follower looks at the leader's silence only when a timer
// randomised in [HeartbeatTimeout, 2*HeartbeatTimeout) fires, and re-arms the
// timer whenever it heard the leader within HeartbeatTimeout. So it notices a
// dead leader anywhere from 1 to almost 3 HeartbeatTimeouts after its last
// contact, and with pre-vote a candidate wins only once a majority noticed (a
// follower that still has a leader refuses it): an election waited for the
// slowest of the survivors' timers. That was most of a leader-and-owner
// failover (the owner's IPs move only by a commit, which needs a leader):
// p50 336 ms, p99 598 ms in the netns lab with the default timings.
//
// electionLoop looks at the leader's silence itself and wakes raft's
// follower loop once it reached HeartbeatTimeout plus a stagger by rank
// (pokeFollower): the surviving voters notice it electionStagger apart, so
// the first has given up the leader (and grants pre-votes) by the time the
// second stands, and the two do not split the vote. The most up-to-date log
// stands last (ranks order by the last log index each host put in its
// latest lease request, then by ID): a survivor whose log is behind could
// not win, and the one that could would have failed its pre-vote already
// and sit out a randomised election timeout (measured: 1 election in 4 took
// 360-470 ms instead of ~200 ms when ordered by ID alone). Nothing here
// touches safety: raft's own rules decide the election, and leases never
// depended on the leader.

// electionStagger is the gap between the moments two voters of adjacent
// rank stand for election after their leader fell silent: a pre-vote round
// trip with room to spare.
func electionStagger(heartbeat time.Duration) time.Duration { return heartbeat / 4 }

// electionDue is when this follower stands for election if the leader stays
// silent: its last contact plus HeartbeatTimeout plus its rank's stagger.
func electionDue(lastContact time.Time, heartbeat time.Duration, rank int) time.Time {
	return lastContact.Add(heartbeat + time.Duration(rank)*electionStagger(heartbeat))
}

// electionRank is self's position among the voters other than leader,
// ordered by lastIndex (each voter's last raft log index as known here),
// then by ID; ok is false when self is not one of them (a non-voter, or the
// leader itself).
func electionRank(voters []string, self, leader string, lastIndex func(id string) uint64) (rank int, ok bool) {
	others := slices.DeleteFunc(slices.Clone(voters), func(id string) bool { return id == leader })
	slices.SortFunc(others, func(a, b string) int {
		return cmp.Or(cmp.Compare(lastIndex(a), lastIndex(b)), cmp.Compare(a, b))
	})
	rank = slices.Index(others, self)
	return rank, rank >= 0
}

// electionLoop runs checkLeader until Close.
func (s *Store) electionLoop() {
	defer s.wg.Done()
	t := time.NewTimer(s.cfg.HeartbeatTimeout)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		t.Reset(s.checkLeader(time.Now()))
	}
}

// checkLeader wakes raft's follower loop if the leader has been silent past
// this host's electionDue, and returns when to look again. It costs a
// configuration read only once the leader has been silent for
// HeartbeatTimeout; otherwise a few atomic loads.
func (s *Store) checkLeader(now time.Time) time.Duration {
	ht := s.cfg.HeartbeatTimeout
	if s.raft.State() != hraft.Follower {
		return ht
	}
	last := s.raft.LastContact()
	if last.IsZero() {
		return ht // no leader heard since start: raft's own timer
	}
	if due := electionDue(last, ht, 0); now.Before(due) {
		return due.Sub(now)
	}
	_, leader := s.raft.LeaderWithID()
	if leader == "" {
		return ht // raft has already given the leader up
	}
	self, voters := s.latestVoters()
	own := s.raft.LastIndex()
	rank, ok := electionRank(voters, self, string(leader), func(id string) uint64 {
		if id == self {
			return own
		}
		return s.voter.view(id).lastIndex
	})
	if !ok {
		return ht
	}
	if due := electionDue(last, ht, rank); now.Before(due) {
		return due.Sub(now)
	}
	s.cfg.Logger.Info("raft leader silent: standing for election", "leader", string(leader),
		"silent", now.Sub(last).Round(time.Millisecond), "rank", rank, "lastIndex", own)
	s.met.leaderSilent.Inc()
	if err := s.pokeFollower(); err != nil {
		s.cfg.Logger.Warn("wake raft's follower loop", "err", err)
	}
	return ht
}

// pokeFollower makes raft's follower loop check the leader's silence now
// rather than when its timer fires. hashicorp/raft (v1.7) has no call for
// that, but ReloadConfig with a shorter HeartbeatTimeout wakes the follower
// loop to re-arm its timer, and the loop then checks at once
// (followerNotifyCh; TestPromptElection fails if a new version stops doing
// so). The configured value is restored right after: the check passes with
// either, the leader having been silent longer than both.
func (s *Store) pokeFollower() error {
	base := s.raft.ReloadableConfig()
	shorter := base
	shorter.HeartbeatTimeout -= time.Nanosecond
	if err := s.raft.ReloadConfig(shorter); err != nil {
		return err
	}
	return s.raft.ReloadConfig(base)
}
