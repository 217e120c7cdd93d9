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
//     Leases reports it, which it does only while a majority of the voters
//     promise it the IP. A voter promises an IP to a host only while it has
//     no running promise of it (plus a clock-drift margin) to anyone else,
//     and any two majorities share a voter, so two hosts never hold a lease
//     for one IP at once, whoever leads and even while nobody does.
//   - Every transport connection carries the dialer's ClusterID, and a host
//     refuses peers of another group: after Recover, the members left out
//     cannot merge back with their old state (see clusterid.go).
//
// The lease protocol (voter.go, lease_client.go): every host sends each voter
// a request every LeaseDuration/4 over the raft port (a multiplexed
// connection). A voter answers with the IPs its applied state assigns to the
// host that it may promise, for LeaseDuration from its answer; the host
// counts each promise from the moment it SENT the request, so its view of a
// promise always ends first. The leader plays no part in renewals: a leader
// crash darkens no other host's IPs. Ownership still changes only through the
// log, and membership changes wait a lease apart (confgate.go). The argument,
// with its clock-rate assumption, is in docs/raft.md.
package raft
