// Command edged is the load-balancer daemon for the HAProxy edge hosts of a
// bare-metal Kubernetes cluster. It only parses flags, loads the config and
// wires packages together; see the README for what it does.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
