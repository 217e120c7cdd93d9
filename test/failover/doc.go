// Package failover measures how long a client is left without an answer
// when an edge host fails, for edged and, side by side in the same lab, for
// keepalived (VRRP with unicast peers, VRRPv2 with advert_int 1 and VRRPv3
// with advert_int 0.01). It also shows what each does under a partition:
// keepalived ends with two masters answering ARP for one IP, edged never
// does.
//
// The lab is test/edgelab's: three edge hosts, a client, the real edged
// binary and kube-apiserver. The client probe sends one HTTP request every
// 10 ms to an HTTP server bound on the VIP in every edge host; probe and
// servers are test/vipprobe processes at real-time priority, so the test
// process's own scheduling is not part of a gap, and machine/timer-floor
// reports what the kernel and the hypervisor still add (a real-time thread
// on this 2-core VM wakes up to ~10-20 ms late now and then, idle or not).
// The numbers come from BenchmarkFailover (not part of `make test`):
//
//	go test ./test/failover -run '^$' -bench Failover -benchtime 20x -timeout 60m
//
// TestFailoverSmoke runs one trial of a few scenarios in `make test`, so the
// benchmark cannot rot.
package failover
