// Command vipprobe is test/vipprobe as its own process, so that a lab can
// run the VIP client and servers at real-time priority, apart from the test
// process (started as `ip netns exec NS chrt -f 50 vipprobe ...`).
//
//	vipprobe serve -listen 10.4.11.0:80 -name e1
//	vipprobe get -url http://10.4.11.0:80/ -every 10ms
//	vipprobe timer -every 10ms -for 30s
//
// serve prints "listening" once bound; get prints one JSON Result per line
// on stdout. Both run until SIGTERM or SIGINT; get then waits for the
// requests in flight and writes their results before it exits. timer
// prints vipprobe.TimerLateness's wake-up delays as one JSON array of
// nanoseconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/goldentooth/edged/test/vipprobe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: vipprobe serve|get|timer [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "get":
		err = get(ctx, os.Args[2:])
	case "timer":
		err = timer(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (serve, get or timer)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vipprobe:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "", "address:port to listen on (IP_FREEBIND)")
	name := fs.String("name", "", "name to answer with")
	_ = fs.Parse(args)
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil || *name == "" {
		return fmt.Errorf("serve needs -listen address:port and -name (listen %q: %v)", *listen, err)
	}
	ln, err := vipprobe.Listen(addr)
	if err != nil {
		return err
	}
	fmt.Println("listening")
	srv := vipprobe.NewServer(*name)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func get(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	every := fs.Duration("every", 10*time.Millisecond, "interval between requests")
	_ = fs.Parse(args)
	if *url == "" || *every <= 0 {
		return errors.New("get needs -url and a positive -every")
	}
	client := vipprobe.NewClient(nil)
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	var werr error
	vipprobe.Loop(ctx.Done(), *every, func() vipprobe.Result { return vipprobe.Get(client, *url) }, func(r vipprobe.Result) {
		mu.Lock()
		defer mu.Unlock()
		if werr == nil {
			werr = enc.Encode(r)
		}
	})
	return werr
}

func timer(args []string) error {
	fs := flag.NewFlagSet("timer", flag.ExitOnError)
	every := fs.Duration("every", 10*time.Millisecond, "interval between wake-ups")
	d := fs.Duration("for", 30*time.Second, "how long to measure")
	_ = fs.Parse(args)
	if *every <= 0 || *d < *every {
		return errors.New("timer needs a positive -every and -for at least as long")
	}
	late, err := vipprobe.TimerLateness(*every, *d)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(late)
}
