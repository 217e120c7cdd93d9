// Command labpod is the lab's stand-in for a pod: an HTTP server that names
// itself in every answer, so a client can see which backend served it. The
// lab runs one per Service port in its "pods" namespace.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	name := flag.String("name", "pod", "name to answer with")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s (%s) for %s\n", *name, *listen, r.RemoteAddr)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("labpod", "listen", *listen, "err", err)
		os.Exit(1)
	}
}
