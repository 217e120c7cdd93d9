// Package raft owns the replicated truth of an edged group: address pools,
// which Service holds which IP, which edge host announces each IP, and the
// hosts' health. It wires hashicorp/raft (bolt log and stable store, file
// snapshots, a mutual-TLS TCP transport) to a deterministic state machine.
//
// Guarantees:
//   - Writes (Allocate, Release, SetPools, membership changes) happen only on
//     the leader; elsewhere they fail with ErrNotLeader.
//   - Every replica applies the same commands in the same order and reaches
//     the same state; snapshots round-trip exactly.
//   - Announcements are fenced by leases: a host may announce an IP only while
//     Leases reports it, and the leader grants an IP to a new host only after
//     every lease another host could still hold for it has expired (lease
//     duration plus a clock-drift margin), including leases granted by an
//     earlier leader. So two hosts never hold a lease for one IP at once.
//   - Every transport connection carries the dialer's ClusterID, and a host
//     refuses peers of another group: after Recover, the members left out
//     cannot merge back with their old state (see clusterid.go).
//
// The lease protocol: every host renews with the leader every LeaseDuration/4
// over the raft port (a multiplexed connection). A host's lease runs from the
// moment it SENT the renewal, the leader's record of it from the moment it
// answered, so the host's lease always ends first. The leader grants only
// while a quorum renewed within LeaseDuration/2 in its term, and a new
// leader grants an IP whose owner changed and was not yet settled only after
// 1.5*LeaseDuration + 2*ClockDriftMargin, the longest a deposed leader's
// grants can outlive the election.
package raft
