package kube

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/test/wait"
)

// BenchmarkCreateToStatus measures Service create -> status written, one
// Service at a time, over 200 Services; reports p50/p99.
func BenchmarkCreateToStatus(b *testing.B) {
	const n = 200
	e := startEnv(b, Options{}, "default="+referencePool)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("s%d-%d", it, i)
			start := time.Now()
			e.create(b, lbService(e.ns, name, 80))
			e.waitIP(b, name)
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[n/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[n*99/100].Milliseconds()), "p99-ms")
	}
}

// BenchmarkReferencePool creates 1,279 Services at once (the whole reference
// pool), waits for all to be allocated, then checks the 1,280th fails.
func BenchmarkReferencePool(b *testing.B) {
	const n = 1279
	for it := 0; it < b.N; it++ {
		e := startEnv(b, Options{}, "default="+referencePool)
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				e.create(b, lbService(e.ns, fmt.Sprintf("r%d", i), 80))
			}(i)
		}
		wg.Wait()
		// Every 100 ms: each look lists every Service.
		if err := wait.UntilEvery(5*time.Minute, 100*time.Millisecond, "every Service allocated", func() (bool, string) {
			l, err := e.admin.CoreV1().Services(e.ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			done := 0
			for _, s := range l.Items {
				if len(s.Status.LoadBalancer.Ingress) > 0 {
					done++
				}
			}
			return done == n, fmt.Sprintf("%d of %d allocated", done, n)
		}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "fill-s")
		e.create(b, lbService(e.ns, "one-too-many", 80))
		e.waitEvent(b, "one-too-many", ReasonFailed)
	}
}
