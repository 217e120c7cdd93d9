package haproxy

import (
	"fmt"
	"net/netip"
)

// slot is the runtime content of one server slot.
type slot struct {
	Used  bool
	Addr  netip.AddrPort
	Drain bool
}

// state returns the runtime admin state a slot should have.
func (s slot) state() string {
	switch {
	case !s.Used:
		return "maint"
	case s.Drain:
		return "drain"
	}
	return "ready"
}

// initialSlots returns the assignment Render produces: servers in sorted
// order in the first slots, the rest empty.
func initialSlots(b Backend) []slot {
	out := make([]slot, b.Slots)
	for i, s := range b.Servers {
		out[i] = slot{Used: true, Addr: s.Addr, Drain: s.Drain}
	}
	return out
}

// reassign keeps every still-desired server in its slot, frees the others
// and puts new servers into the lowest free slots. ok is false when the
// servers do not fit (a structural change is needed).
func reassign(old []slot, servers []Server) (out []slot, ok bool) {
	want := make(map[netip.AddrPort]Server, len(servers))
	for _, s := range servers {
		want[s.Addr] = s
	}
	out = make([]slot, len(old))
	for i, s := range old {
		if d, keep := want[s.Addr]; s.Used && keep {
			out[i] = slot{Used: true, Addr: s.Addr, Drain: d.Drain}
			delete(want, s.Addr)
		}
	}
	next := 0
	for _, s := range servers {
		if _, pending := want[s.Addr]; !pending {
			continue
		}
		for next < len(out) && out[next].Used {
			next++
		}
		if next == len(out) {
			return nil, false
		}
		out[next] = slot{Used: true, Addr: s.Addr, Drain: s.Drain}
		next++
	}
	return out, true
}

// slotCommands returns the runtime commands that turn slots from into to
// for backend b. Address changes happen while the slot is in maintenance
// (or before it leaves it), so no traffic reaches a half-set server. With
// checks on, a moved server's health is forced up: Kubernetes already
// reports the endpoint ready, and waiting for the first check would add up
// to one check interval to every change; a failing check still takes it
// out after `fall` checks.
func slotCommands(b string, checked bool, from, to []slot) []string {
	var cmds []string
	for i := range to {
		f, t := slot{}, to[i]
		if i < len(from) {
			f = from[i]
		}
		name := b + "/" + slotName(i)
		moved := t.Used && f.Addr != t.Addr
		if moved && f.Used {
			cmds = append(cmds, "set server "+name+" state maint")
			f.Used = false
		}
		if moved {
			cmds = append(cmds, fmt.Sprintf("set server %s addr %s port %d", name, t.Addr.Addr(), t.Addr.Port()))
			if checked {
				cmds = append(cmds, "set server "+name+" health up")
			}
		}
		if f.state() != t.state() || moved {
			cmds = append(cmds, "set server "+name+" state "+t.state())
		}
	}
	return cmds
}

// observedSlots converts `show servers state` rows of one backend into
// slots, for re-applying runtime state after a reload.
func observedSlots(rows []ServerState, b string, n int) []slot {
	out := make([]slot, n)
	for _, r := range rows {
		if r.Backend != b {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(r.Name, "s%d", &i); err != nil || i < 1 || i > n {
			continue
		}
		maint := r.AdminState&adminMaintMask != 0
		out[i-1] = slot{Used: !maint, Addr: r.Addr, Drain: !maint && r.AdminState&adminDrain != 0}
	}
	return out
}

// adminDrain is srv_admin_state's forced-drain bit (SRV_ADMF_FDRAIN).
const adminDrain = 0x08
