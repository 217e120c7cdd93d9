// Package announce owns the layer-2 announcement of LoadBalancer IPs: it
// answers ARP (RFC 826) requests for the IPs this host holds a raft lease
// for, and sends gratuitous ARP on takeover. It guarantees that a frame is
// answered only while the lease for its target IP is valid at the moment the
// frame is handled, only on a configured interface that is up, ARP-capable
// and not a bond member, and never after Stop.
package announce
