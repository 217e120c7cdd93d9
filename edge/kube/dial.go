package kube

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Patient dialling: client-go's informers back off after each failed
// request (0.8 s doubling to 30 s, with up to 2x jitter), so after a minute
// without an apiserver they may wait most of another minute before trying
// again. A dial that waits out a refusing apiserver instead of failing keeps
// the informers' next request pending, and it goes through as soon as the
// apiserver listens again.
const (
	// patientDialWait bounds how long one dial waits for a refusing
	// apiserver: the outage the issue asks to ride out (a minute) plus margin.
	patientDialWait = 90 * time.Second
	// redialEvery is how often a refused dial is retried.
	redialEvery = 250 * time.Millisecond
)

// PatientDial makes cfg's connections wait, up to patientDialWait, for an
// apiserver that refuses them (restarting, or briefly gone), redialling
// every redialEvery, instead of failing at once. The request's context still
// ends the wait. Other errors (no route, timeouts) fail as before.
func PatientDial(cfg *rest.Config) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return patientDial(ctx, d.DialContext, network, addr, patientDialWait)
	}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func patientDial(ctx context.Context, dial dialFunc, network, addr string, wait time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := dial(ctx, network, addr)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().Add(redialEvery).After(deadline) {
			return c, err
		}
		t := time.NewTimer(redialEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}
