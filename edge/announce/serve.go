package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/arp"
)

// Serve answers ARP requests on the named interface until ctx ends. It needs
// an IPv4 address on the interface (mdlayher/arp.Dial requires one).
func (a *Announcer) Serve(ctx context.Context, ifname string) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("arp dial %s: %w", ifname, err)
	}
	go func() { <-ctx.Done(); c.Close() }()
	for {
		_, ef, err := c.Read()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("arp read %s: %w", ifname, err)
		}
		if err != nil {
			continue // malformed frame: mdlayher/arp reports parse errors per frame
		}
		// Re-read link flags per frame so a downed link stops answers at once.
		cur, err := net.InterfaceByIndex(ifi.Index)
		if err != nil {
			continue
		}
		ifc := Iface{HW: cur.HardwareAddr, Up: cur.Flags&net.FlagUp != 0 && cur.Flags&net.FlagRunning != 0}
		b, err := ef.MarshalBinary()
		if err != nil {
			continue
		}
		reply, _ := a.handleARP(b, time.Now(), ifc)
		if reply == nil {
			continue
		}
		if err := c.WriteTo(reply, reply.TargetHardwareAddr); err == nil {
			countResponse(reply.SenderIP.String())
		}
	}
}
