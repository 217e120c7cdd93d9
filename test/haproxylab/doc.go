// Package haproxylab holds the end-to-end tests and benchmarks of edged's
// HAProxy path in network namespaces: a real HAProxy (master-worker, the
// operator's own haproxy.cfg plus edged's file) in an "edge" namespace, HTTP
// pod servers in a "pods" namespace, a "client" namespace sending traffic to
// the VIPs, and edged's real code path (a single-node raft group, the
// Service controller and its informers against the test kube-apiserver,
// proxy.Part) driving HAProxy. It has no non-test code.
package haproxylab
