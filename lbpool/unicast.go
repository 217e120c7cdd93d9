package lbpool

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrBadAddress reports an address taken from a Kubernetes object (a Node's
// InternalIP, an endpoint, a requested or adopted IP) that edged refuses.
var ErrBadAddress = errors.New("unusable address")

// maxAddrLen is the longest textual IPv6 address without a zone
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 bytes).
const maxAddrLen = 45

// ParseUnicast parses an address that comes from a Kubernetes object and
// will be dialled, announced or written into HAProxy's config. Every field
// of those objects is untrusted, so it is strict where netip is lenient: it
// refuses a zone ("fe80::1%eth0": the zone may hold any bytes, newlines
// included), the IPv4-mapped IPv6 form ("::ffff:10.0.0.1": one host under
// two spellings), and addresses that are never a remote unicast host
// (unspecified, loopback, multicast, link-local: a tenant must not point
// the edge at its own 127.0.0.1 services or at 169.254.169.254). The error
// quotes the input with %q, so it is safe to log and to put in an Event.
func ParseUnicast(s string) (netip.Addr, error) {
	if len(s) > maxAddrLen || strings.ContainsRune(s, '%') {
		return netip.Addr{}, fmt.Errorf("%q: not a plain IP address (zones are refused): %w", clip(s), ErrBadAddress)
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q: not an IP address: %w", clip(s), ErrBadAddress)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%q: IPv4-mapped IPv6 addresses are refused; write %s: %w", s, a.Unmap(), ErrBadAddress)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsInterfaceLocalMulticast():
		return netip.Addr{}, fmt.Errorf("%q: not a remote unicast address: %w", s, ErrBadAddress)
	}
	return a, nil
}

// clipLen bounds how much of a refused input an error quotes.
const clipLen = 64

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	return s[:clipLen] + "..."
}
