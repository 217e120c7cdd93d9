// Package nft forwards the UDP and SCTP ports of LoadBalancer Services,
// which HAProxy cannot proxy, with nftables (github.com/google/nftables).
//
// It owns two tables, "ip edged" and "ip6 edged", that nothing else
// writes. Build (pure) turns Services, EndpointSlices, Nodes and raft
// allocations into Forwards; a Table installs a set of Forwards; the Part
// keeps the Table in step with the cache and with the leases this host
// holds.
//
// Guarantees:
//   - A Forward is installed only while this host holds the lease of its
//     VIP: a lease that ends, expires or is dropped removes its rules (and
//     the conntrack entries of its flows) in the next apply, and the Part
//     applies at the instant the lease set ends even when no renewal comes.
//   - Every apply replaces both tables in one netlink batch (one nftables
//     transaction): a packet sees the whole old rule set or the whole new
//     one, never a mix. Start and Close delete the tables, so a crashed
//     run's rules never outlive the next start.
//   - New flows are balanced at random over the ready endpoints (serving
//     terminating ones only when none is ready, as kube-proxy does).
//     Conntrack keeps an established flow on its endpoint across rule
//     changes for as long as that endpoint is ready or serving; the
//     conntrack entries of flows whose endpoint left are deleted, so their
//     next packet is balanced afresh instead of going to a gone pod.
//   - spec.loadBalancerSourceRanges, when set, admits only sources inside
//     them, on every packet (a filter chain ahead of DNAT): a range change
//     applies to established flows too. A set field whose entries are all
//     invalid or of the other family admits nobody: a typo never opens a
//     port wider.
//   - A port with no usable endpoint answers ICMP port unreachable (reject)
//     instead of vanishing silently, so clients and operators see it.
//   - Every Kubernetes field is untrusted: ports, addresses (lbpool.ParseUnicast,
//     the VIP's family), ranges and the backend annotation are checked; a
//     bad value leaves out only what it touches and is reported as a
//     Problem (an Event), and every other Service is still forwarded.
//
// Replies return through the edge host because forwarded packets are
// masqueraded to its address (the pods see the edge host, not the client:
// the same as HAProxy's TCP proxying). The host must forward IPv4 (and
// IPv6) packets: configs/99-edged.conf sets net.ipv4.ip_forward. See
// docs/udp.md.
package nft
