// Package announce owns the layer-2 announcement of LoadBalancer IPs: it
// answers ARP requests (RFC 826) and Neighbor Solicitations (RFC 4861) for
// the IPs this host holds a raft lease for, and sends gratuitous ARP and
// unsolicited Neighbor Advertisements on takeover, periodically, and when a
// link comes back. It guarantees that a frame, answer or gratuitous, goes
// out only while the lease for its IP is valid at the moment it is sent,
// only on an interface the IP's advertisement allows that is up,
// ARP-capable and not a bond member, never in answer to this host's own
// frames, and never after Stop.
package announce
