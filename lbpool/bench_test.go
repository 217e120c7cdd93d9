package lbpool

import (
	"math/rand"
	"testing"
)

// fill allocates n services, then releases a random tenth of them so the
// free set is fragmented as a long-lived pool's would be.
func fill(b *testing.B, a *Allocator, n int, fam Family) {
	b.Helper()
	for i := 0; i < n; i++ {
		if _, err := a.Allocate(Request{Key: key(i), Families: []Family{fam}}); err != nil {
			b.Fatalf("fill %d: %v", i, err)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < n/10; i++ {
		a.Release(key(rng.Intn(n)))
	}
}

func benchChurn(b *testing.B, a *Allocator, fam Family) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := Request{Key: "bench/churn", Families: []Family{fam}}
		if _, err := a.Allocate(req); err != nil {
			b.Fatal(err)
		}
		a.Release("bench/churn")
	}
}

// BenchmarkReferencePoolNearlyFull: allocate+release on 10.4.11.0 - 10.4.15.254 with 1,270 of 1,279 in use.
func BenchmarkReferencePoolNearlyFull(b *testing.B) {
	a := mustNew(b, mustPool(b, "primary", referenceRange))
	for i := 0; i < 1270; i++ {
		a.Allocate(Request{Key: key(i)})
	}
	benchChurn(b, a, IPv4)
}

// BenchmarkSlash16At90Percent: allocate+release on a /16 holding 58,982 allocations, fragmented.
func BenchmarkSlash16At90Percent(b *testing.B) {
	a := mustNew(b, mustPool(b, "p", "10.20.0.0/16"))
	fill(b, a, 65536*9/10+6554, IPv4) // 90% after the random tenth is released
	benchChurn(b, a, IPv4)
}

// BenchmarkIPv6Slash64: allocate+release on an IPv6 /64 with 100,000 allocations.
func BenchmarkIPv6Slash64(b *testing.B) {
	a := mustNew(b, mustPool(b, "p", "fd00:20::/64"))
	fill(b, a, 100000, IPv6)
	benchChurn(b, a, IPv6)
}
