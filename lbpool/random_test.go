package lbpool

import (
	"flag"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
)

var randomSteps = flag.Int("lbpool.steps", 20000, "steps per seed in TestRandomAgainstBruteForce")

// TestRandomAgainstBruteForce drives long random allocate/release sequences
// (fixed seeds) and checks after every step that no address has two holders
// unless their sharing is legal, that every holder's address lies in a pool
// and is allowed by avoidBuggyIPs, and that Stats equals a brute-force count.
func TestRandomAgainstBruteForce(t *testing.T) {
	small := mustPool(t, "small", "10.0.0.250 - 10.0.1.5", "10.0.2.0/30")
	small.AvoidBuggyIPs = true
	other := mustPool(t, "other", "10.1.0.0/29", "fd00::/125")
	other.Allocation = &ServiceAllocation{Priority: intp(1)}
	manual := mustPool(t, "manual", "10.2.0.0/30")
	manual.AutoAssign = false
	pools := []Pool{small, other, manual}
	for _, seed := range []int64{1, 2, 3, 42, 1234} {
		rng := rand.New(rand.NewSource(seed))
		a := mustNew(t, pools...)
		for n := 0; n < *randomSteps; n++ {
			k := "ns/s" + itoa(rng.Intn(40))
			if rng.Intn(3) == 0 {
				a.Release(k)
			} else {
				a.Allocate(randomRequest(rng, k))
			}
			if err := checkInvariants(a, pools); err != "" {
				t.Fatalf("seed %d step %d: %s", seed, n, err)
			}
		}
	}
}

func randomRequest(rng *rand.Rand, k string) Request {
	req := Request{Key: k, TrafficPolicyCluster: rng.Intn(4) != 0, Selector: "app=" + itoa(rng.Intn(2))}
	switch rng.Intn(6) {
	case 0:
		req.Pool = []string{"small", "other", "manual", "nope"}[rng.Intn(4)]
	case 1:
		all := []string{"10.0.0.255", "10.0.1.1", "10.0.2.3", "10.1.0.4", "10.2.0.1", "fd00::3", "10.9.9.9"}
		req.IPs = ips(all[rng.Intn(len(all))])
	case 2:
		req.Families = []Family{IPv4, IPv6}
	}
	if rng.Intn(2) == 0 {
		req.SharingKey = []string{"a", "b"}[rng.Intn(2)]
		req.Ports = []Port{{Protocol: "TCP", Port: int32(rng.Intn(3))}}
	}
	return req
}

func checkInvariants(a *Allocator, pools []Pool) string {
	held := map[netip.Addr][]Allocation{}
	for _, al := range a.Allocations() {
		for _, ip := range al.IPs {
			held[ip] = append(held[ip], al)
		}
	}
	want := make([]PoolStats, len(pools))
	for i, p := range pools {
		want[i].Pool = p.Name
		for _, r := range p.Ranges {
			for x := r.First; x.IsValid() && x.Compare(r.Last) <= 0; x = x.Next() {
				if p.AvoidBuggyIPs && x.Is4() && (x.As4()[3] == 0 || x.As4()[3] == 255) {
					if len(held[x]) > 0 {
						return "buggy address " + x.String() + " handed out"
					}
					continue
				}
				inUse := len(held[x]) > 0
				if x.Is4() {
					want[i].TotalV4++
					if inUse {
						want[i].InUseV4++
					}
				} else {
					want[i].TotalV6++
					if inUse {
						want[i].InUseV6++
					}
				}
			}
		}
	}
	for ip, hs := range held {
		if _, ok := a.PoolOf(ip); !ok {
			return ip.String() + " held outside every pool"
		}
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				req := Request{Key: hs[j].Key, SharingKey: hs[j].SharingKey, Ports: hs[j].Ports,
					TrafficPolicyCluster: hs[j].TrafficPolicyCluster, Selector: hs[j].Selector}
				if err := sharingOK(hs[i], req); err != nil {
					return ip.String() + " held by " + hs[i].Key + " and " + hs[j].Key + ": " + err.Error()
				}
			}
		}
		if got := a.Holders(ip); len(got) != len(hs) {
			return "holder index out of step for " + ip.String()
		}
	}
	if got := a.Stats(); !slices.Equal(got, want) {
		return "stats differ from brute force"
	}
	return ""
}

// TestMemoryFollowsAllocations checks that huge pools are never materialised:
// a /8 and an IPv6 /64 start as one free span each, and spans grow only with
// fragmentation from allocations.
func TestMemoryFollowsAllocations(t *testing.T) {
	a := mustNew(t, mustPool(t, "big4", "10.0.0.0/8"), mustPool(t, "big6", "fd00::/64"))
	for _, p := range a.pools {
		for _, fs := range p.free {
			if fs != nil && fs.spans() != 1 {
				t.Fatalf("pool %s starts with %d spans, want 1", p.Name, fs.spans())
			}
		}
	}
	for i := 0; i < 1000; i++ {
		a.Allocate(Request{Key: key(i), Families: []Family{IPv4}})
		a.Allocate(Request{Key: "v6/" + itoa(i), Pool: "big6", Families: []Family{IPv6}})
	}
	for i := 0; i < 1000; i += 2 {
		a.Release(key(i))
	}
	if n := a.pools[0].free[0].spans(); n > 501 {
		t.Errorf("/8 with 500 holes uses %d spans, want <= 501", n)
	}
	st := a.Stats()
	if st[0].TotalV4 != 1<<24 || st[0].InUseV4 != 500 || st[1].InUseV6 != 1000 || st[1].TotalV6 != ^uint64(0) {
		t.Errorf("stats = %+v", st)
	}
}
