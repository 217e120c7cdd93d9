package edgelab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// ARPEvent is one ARP frame seen on the client's eth0.
type ARPEvent struct {
	At time.Time
	// Sent is true for a request the recorder itself sent.
	Sent bool
	// Reply is true for an ARP reply, false for a request (gratuitous
	// ARP included).
	Reply     bool
	SenderMAC string
	SenderIP  netip.Addr
	TargetIP  netip.Addr
}

// ARPRecorder asks for a set of IPs at a fixed interval from the client's
// eth0 (a raw socket, like arping) and records every ARP frame it sees, so
// a test can tell how many MACs answered each request.
type ARPRecorder struct {
	c    *arp.Client
	mac  string
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu     sync.Mutex
	events []ARPEvent
}

// RecordARP starts a recorder on the client asking for ips every interval;
// Stop (or Close) ends it.
func (l *Lab) RecordARP(ips []netip.Addr, interval time.Duration) (*ARPRecorder, error) {
	var c *arp.Client
	if err := l.Do(l.Client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		return nil, fmt.Errorf("ARP socket on the client: %w", err)
	}
	r := &ARPRecorder{c: c, mac: c.HardwareAddr().String(), stop: make(chan struct{})}
	r.wg.Add(2)
	go r.read()
	go r.ask(ips, interval)
	l.onClose(r.Stop)
	return r, nil
}

func (r *ARPRecorder) add(e ARPEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Requests carry a tag as their sender IP, cycling through tagCount unused
// addresses of the segment (10.77.0.150-199): a reply goes back to the
// request's sender IP, so it names the request it answers even when it
// arrives after the next request went out (a delayed reply would otherwise
// look like a second MAC answering the next request).
const tagCount = 50

var tagBase = netip.MustParseAddr("10.77.0.150")

func tag(n int) netip.Addr {
	a := tagBase.As4()
	a[3] += byte(n % tagCount)
	return netip.AddrFrom4(a)
}

func (r *ARPRecorder) ask(ips []netip.Addr, interval time.Duration) {
	defer r.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	hw := r.c.HardwareAddr()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for n := 0; ; n++ {
		for _, ip := range ips {
			sender := tag(n)
			p, err := arp.NewPacket(arp.OperationRequest, hw, sender, bcast, ip)
			if err != nil {
				continue
			}
			at := time.Now()
			if err := r.c.WriteTo(p, bcast); err == nil {
				r.add(ARPEvent{At: at, Sent: true, SenderMAC: r.mac, SenderIP: sender, TargetIP: ip})
			}
		}
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
	}
}

func (r *ARPRecorder) read() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		_ = r.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		p, _, err := r.c.Read()
		at := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a frame that does not parse as ARP
		}
		// The raw socket also sees this host's own frames.
		if p.SenderHardwareAddr.String() == r.mac {
			continue
		}
		r.add(ARPEvent{At: at, Reply: p.Operation == arp.OperationReply, SenderMAC: p.SenderHardwareAddr.String(),
			SenderIP: p.SenderIP, TargetIP: p.TargetIP})
	}
}

// Stop ends the recorder and closes its socket.
func (r *ARPRecorder) Stop() {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.c.Close()
	})
}

// Events returns a copy of the events so far, by time. The sender and the
// reader append concurrently, so a fast reply can be appended before the
// request it answers (whose time is taken before the write): the copy is
// sorted.
func (r *ARPRecorder) Events() []ARPEvent {
	r.mu.Lock()
	out := append([]ARPEvent(nil), r.events...)
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// ARPReport sums up the answers for one IP.
type ARPReport struct {
	// Requests is the number of requests the recorder sent for the IP.
	Requests int
	// Answered is the number of requests that got at least one reply.
	Answered int
	// Dual is the number of requests answered by two or more MACs: a
	// moment when two hosts claim the IP (split brain).
	Dual int
	// MACs lists the MACs that replied, in order of first reply.
	MACs []string
	// Switches counts changes of the replying MAC from one reply to the
	// next; a clean handover is one switch.
	Switches int
	// Gratuitous counts gratuitous ARPs (sender IP = target IP) per MAC.
	Gratuitous map[string]int
	// Spread is, per request answered by two or more MACs, the time from
	// the first reply to the first reply of another MAC: ~0 when two hosts
	// answer at once (split brain), long when one host answered a request
	// it read late, after the other had handed the IP over.
	Spread []time.Duration
}

// Analyze attributes every reply for ip to the request it answers (the
// latest one sent with the reply's target IP as tag) and reports how many
// MACs answered each request.
func Analyze(events []ARPEvent, ip netip.Addr) ARPReport {
	rep := ARPReport{Gratuitous: map[string]int{}}
	var answers []map[string]time.Time
	byTag := map[netip.Addr]int{}
	last := ""
	for _, e := range events {
		switch {
		case e.Sent && e.TargetIP == ip:
			byTag[e.SenderIP] = len(answers)
			answers = append(answers, map[string]time.Time{})
		case !e.Sent && !e.Reply && e.SenderIP == ip && e.TargetIP == ip:
			rep.Gratuitous[e.SenderMAC]++
		case !e.Sent && e.Reply && e.SenderIP == ip:
			if k, ok := byTag[e.TargetIP]; ok {
				if _, seen := answers[k][e.SenderMAC]; !seen {
					answers[k][e.SenderMAC] = e.At
				}
			}
			seen := false
			for _, m := range rep.MACs {
				seen = seen || m == e.SenderMAC
			}
			if !seen {
				rep.MACs = append(rep.MACs, e.SenderMAC)
			}
			if last != "" && last != e.SenderMAC {
				rep.Switches++
			}
			last = e.SenderMAC
		}
	}
	rep.Requests = len(answers)
	for _, a := range answers {
		if len(a) > 0 {
			rep.Answered++
		}
		if len(a) > 1 {
			rep.Dual++
			var first, second time.Time
			for _, at := range a {
				switch {
				case first.IsZero() || at.Before(first):
					first, second = at, first
				case second.IsZero() || at.Before(second):
					second = at
				}
			}
			rep.Spread = append(rep.Spread, second.Sub(first))
		}
	}
	return rep
}

var arpingReply = regexp.MustCompile(`bytes from ([0-9a-f:]{17}) \(([0-9.]+)\)`)

// Arping runs the arping binary (Thomas Habets' arping) on the client for
// ip with count requests and returns the number of replies per MAC.
func (l *Lab) Arping(ip netip.Addr, count int) (map[string]int, string, error) {
	out, err := l.Exec(l.Client, "arping", "-i", "eth0", "-c", fmt.Sprint(count), "-W", "0.2", ip.String())
	got := map[string]int{}
	for _, m := range arpingReply.FindAllStringSubmatch(strings.ToLower(out), -1) {
		if m[2] == ip.String() {
			got[m[1]]++
		}
	}
	if len(got) == 0 && err != nil {
		return got, out, fmt.Errorf("arping %s: %w", ip, err)
	}
	return got, out, nil
}

// Neighbour returns the client's neighbour entry for ip (MAC and NUD
// state), or an empty MAC when there is none.
func (l *Lab) Neighbour(ip netip.Addr) (string, int, error) {
	link, err := l.Client.nl.LinkByName("eth0")
	if err != nil {
		return "", 0, err
	}
	ns, err := l.Client.nl.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return "", 0, err
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n.HardwareAddr.String(), n.State, nil
		}
	}
	return "", 0, nil
}
