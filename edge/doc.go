// Package edge is the appliance: it ties the raft state, the Kubernetes
// controller, the ARP/NDP announcer and HAProxy together into one daemon
// with an ordered, time-bounded life cycle. Each part lives in its own
// package; edge only wires them, serves their state (admin socket, metrics)
// and tells systemd how the daemon is doing.
package edge
