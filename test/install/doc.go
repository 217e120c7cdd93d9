// Package install proves the shipped install path: it boots Debian 12
// (bookworm) with systemd as PID 1 in systemd-nspawn containers, one per
// edge host, each with its own root filesystem (a debootstrap'd rootfs
// cached in RootfsDir, mounted --volatile=overlay so nothing persists) and
// its own network namespace of a test/lab segment; installs the .deb built
// from this tree with apt; runs the sh blocks of docs/operate.md's Install
// section word for word; and checks edged serving a Service from the test
// apiserver on its VIP through Debian's HAProxy, across reloads, restarts,
// an upgrade and a purge.
//
// It never boots systemd over the host's root (its tmpfiles would empty
// the host's /tmp), and it removes every container, cgroup and namespace
// it made, also when it fails.
package install
