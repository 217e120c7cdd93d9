// Package edgelab runs the real edged binary in a network-namespace lab for
// end-to-end tests and the failover benchmark: a bridge in its own
// namespace, three edge hosts (edged with raft over mutual TLS, the
// kernel's ARP kept silent by arp_ignore/arp_announce), a client host, and
// the real test kube-apiserver on root loopback, reached from every edge
// host through a proxy the test opens inside the host's namespace.
//
// By default HAProxy is not run (edged's HAProxy part only logs that it
// cannot reload): announcing is under test, and a plain HTTP server bound
// on each VIP in every edge host stands in for HAProxy's frontends. With
// Options.HAProxy every edge host runs Debian's haproxy in master-worker
// mode on the files edged's config names, a pods host carries Pod servers,
// and the pool's addresses sit on a veth of every edge host so a test
// reaches each host's own HAProxy (HTTPVia) without an ARP move.
//
// It also holds the instruments the tests judge by: that HTTP server, a
// client probe that sends one request every few milliseconds and reports
// the gap after a fault, an ARP recorder on the client that counts how many
// MACs answer each request, and helpers for faults (SIGKILL, SIGTERM, link
// down, partition).
//
// It guarantees that the root namespace gets no address or route, that all
// traffic stays inside namespaces the lab created, and that every process
// it started (by PID; HAProxy's master and workers by the master's process
// group) and every namespace it made (by name, prefix edl-fo) is gone after
// the test, also when the test fails.
package edgelab
