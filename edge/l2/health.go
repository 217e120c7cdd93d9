package l2

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/goldentooth/edged/edge/health"
)

// CarrierProbe fails while no interface this Speaker announces on is up
// with carrier (IFF_UP and IFF_RUNNING): the host could hold leases that
// no client can reach. One interface with carrier is enough; the
// announcer already skips the others. Before Start it passes; the
// appliance starts its parts (the health monitor) after the Speaker.
func (s *Speaker) CarrierProbe() health.Probe {
	return health.Probe{Name: "carrier", Check: func(context.Context) error {
		if s.served == nil {
			return nil
		}
		names := s.served.Served()
		if len(names) == 0 {
			return nil
		}
		var down []string
		for _, n := range names {
			ifc, err := net.InterfaceByName(n)
			switch {
			case err != nil:
				down = append(down, n+" (missing)")
			case ifc.Flags&net.FlagUp == 0:
				down = append(down, n+" (down)")
			case ifc.Flags&net.FlagRunning == 0:
				down = append(down, n+" (no carrier)")
			default:
				return nil
			}
		}
		return fmt.Errorf("no announce interface can reach clients: %s", strings.Join(down, ", "))
	}}
}
