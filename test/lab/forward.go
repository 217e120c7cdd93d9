package lab

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// forwardDial bounds the dial to the target for one forwarded connection.
const forwardDial = 5 * time.Second

// Forward listens on listen (an address on the namespace's own loopback)
// inside host's namespace and forwards every connection to target, dialled
// from the root namespace: a test reaches a root-loopback server (the test
// kube-apiserver) from inside the lab without giving any namespace a route
// out. Stop closes the listener and every open connection and waits for
// them; it may be called more than once.
func (l *Lab) Forward(host, listen, target string) (stop func(), err error) {
	var ln net.Listener
	if err := l.Do(host, func() error {
		var err error
		ln, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		return nil, fmt.Errorf("forward %s in %s: %w", listen, l.ns(host), err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				out, err := net.DialTimeout("tcp", target, forwardDial) // a new goroutine: root namespace
				if err != nil {
					return
				}
				defer out.Close()
				track(in, true)
				track(out, true)
				defer track(in, false)
				defer track(out, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}, nil
}
