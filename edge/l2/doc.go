// Package l2 is edged's layer-2 part: it turns the raft leases this host
// holds into ARP/NDP announcements (edge/announce) and addresses on lo
// (edge/vip), on the interfaces the L2 advertisements in force give each
// pool (edge/config).
//
// A Speaker guarantees that a leased IP is announced only on its pool's
// advertised interfaces and only when an advertisement lets this host
// announce it; that lo holds exactly the leased IPs (also those of pools no
// advertisement announces); that a new IP is on lo before it is announced
// and a withdrawn one is no longer announced before it leaves lo; and that
// once Close returns nothing of it runs, nothing is announced and lo holds
// none of its addresses. The frame-level guarantees (never after the lease
// ends, never on a down or NOARP link) are edge/announce's.
package l2
