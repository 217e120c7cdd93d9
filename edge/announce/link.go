package announce

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkReader reads an interface's state through a netlink handle opened in
// the network namespace Serve was called in, so it stays right from any
// goroutine (and any OS thread) afterwards.
type linkReader struct {
	h     *netlink.Handle
	index int
}

func newLinkReader(index int) (*linkReader, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return &linkReader{h: h, index: index}, nil
}

// read returns the interface's current state; on error the interface counts
// as down, so nothing is sent on a link that cannot be seen.
func (r *linkReader) read() Iface {
	ifc, _ := r.state()
	return ifc
}

// state is read, and also reports whether the interface is gone (deleted:
// its index no longer exists), as opposed to down or unreadable.
func (r *linkReader) state() (ifc Iface, gone bool) {
	l, err := r.h.LinkByIndex(r.index)
	if err != nil {
		var nf netlink.LinkNotFoundError
		return Iface{}, errors.As(err, &nf)
	}
	return ifaceOf(l.Attrs()), false
}

// ifaceOf maps netlink link attributes to the decision's view. Up needs
// both IFF_UP (administrative) and IFF_RUNNING (carrier / operational).
func ifaceOf(at *netlink.LinkAttrs) Iface {
	f := at.RawFlags
	_, bond := at.Slave.(*netlink.BondSlave)
	return Iface{
		Name:       at.Name,
		HW:         at.HardwareAddr,
		Up:         f&unix.IFF_UP != 0 && f&unix.IFF_RUNNING != 0,
		NoARP:      f&unix.IFF_NOARP != 0,
		BondMember: bond || f&unix.IFF_SLAVE != 0,
	}
}

func (r *linkReader) close() { r.h.Close() }

// watch calls kick on every change of the interface (up, down, flags) until
// ctx ends, so a link that comes back is announced at once rather than at
// the next poll. Like newLinkReader it subscribes in the caller's namespace.
func (r *linkReader) watch(ctx context.Context, kick func()) error {
	ch := make(chan netlink.LinkUpdate, 16)
	if err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{}); err != nil {
		return fmt.Errorf("subscribe to link changes: %w", err)
	}
	go func() {
		for u := range ch {
			if int(u.Index) == r.index {
				kick()
			}
		}
	}()
	return nil
}
