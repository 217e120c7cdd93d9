// Package systemd holds edged's systemd unit (edged.service) and the tests
// that check it with systemd-analyze and against the operating contract
// (Type=notify, watchdog, restart policy, dedicated user, capabilities,
// hardening, ordering after HAProxy). It has no Go code of its own.
package systemd
