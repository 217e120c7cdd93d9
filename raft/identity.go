package raft

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// A lease renewal names its sender in From, and the leader acts on that name:
// it grants the IPs the state assigns to it, marks it draining, removes it.
// With mutual TLS the name must therefore be one the sender's certificate
// vouches for, or any certificate from the raft CA could renew as, drain or
// remove another host.
//
// The rule: From must equal the peer certificate's Subject CommonName or one
// of its DNS SANs, exactly (node IDs are compared byte for byte, as raft
// compares server IDs). That is what the repo's certificates carry: testpki
// mints node certificates with CN = node ID; a certificate from a site CA
// whose CN is a host's FQDN can name the node ID as an extra DNS SAN. IP
// SANs are not names and never match.
//
// With insecurePlaintext there is no certificate and so no identity: From is
// taken as said, as before (such a group trusts whoever reaches the port;
// it can join the raft group too).

// peerIdentity is who the certificate of a lease connection's peer says it
// is.
type peerIdentity struct {
	cn  string
	dns []string
}

// connIdentity returns the identity of c's TLS peer. It reports false when
// c carries no TLS state (the caller decides whether TLS was required); a
// TLS connection without a peer certificate yields an identity that
// vouches for no name.
func connIdentity(c net.Conn) (peerIdentity, bool) {
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return peerIdentity{}, false
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return peerIdentity{}, true
	}
	return peerIdentity{cn: certs[0].Subject.CommonName, dns: certs[0].DNSNames}, true
}

// vouchesFor reports whether the certificate names node.
func (p peerIdentity) vouchesFor(node string) bool {
	return node != "" && (node == p.cn || slices.Contains(p.dns, node))
}

// String lists the certificate's names for logs.
func (p peerIdentity) String() string {
	return fmt.Sprintf("CN=%q DNS=[%s]", p.cn, strings.Join(p.dns, ","))
}

// refuseIdentity answers a renewal whose From the peer's certificate does
// not vouch for. It changes nothing in the leader's state and logs a
// warning at most once per logEvery per (certificate, claimed name).
func (s *Store) refuseIdentity(id peerIdentity, req renewRequest, remote net.Addr) renewResponse {
	if s.logLim.allow("identity\x00"+id.String()+"\x00"+req.From, time.Now()) {
		s.cfg.Logger.Warn("lease renewal refused: the peer's certificate does not name the host it claims to be",
			"claimed", req.From, "cert", id.String(), "remote", remote.String())
	}
	return renewResponse{Reason: fmt.Sprintf("identity mismatch: certificate %s does not name %q", id, req.From)}
}
