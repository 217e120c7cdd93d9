// Command testapiserver is a real kube-apiserver with an embedded etcd, for
// edged's tests only: one binary built from Go modules, because no
// Kubernetes binaries can be downloaded where the tests run.
//
// It starts etcd on loopback (client port from --etcd-port, data in
// --etcd-dir), then runs kube-apiserver's own command with the remaining
// arguments plus --etcd-servers pointing at it.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	fs := flag.NewFlagSet("testapiserver", flag.ContinueOnError)
	etcdDir := fs.String("etcd-dir", "", "etcd data directory (required)")
	etcdPort := fs.Int("etcd-port", 0, "etcd client port on 127.0.0.1 (required)")
	etcdPeerPort := fs.Int("etcd-peer-port", 0, "etcd peer port on 127.0.0.1 (required)")
	// Our flags come first, then "--", then kube-apiserver's.
	args := os.Args[1:]
	split := len(args)
	for i, a := range args {
		if a == "--" {
			split = i
			break
		}
	}
	if err := fs.Parse(args[:split]); err != nil || *etcdDir == "" || *etcdPort == 0 || *etcdPeerPort == 0 {
		fmt.Fprintln(os.Stderr, "usage: testapiserver --etcd-dir DIR --etcd-port N --etcd-peer-port N -- [kube-apiserver flags]")
		os.Exit(2)
	}
	rest := []string{}
	if split < len(args) {
		rest = args[split+1:]
	}

	cfg := embed.NewConfig()
	cfg.Dir = *etcdDir
	cfg.LogLevel = "error"
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", *etcdPort))
	peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", *etcdPeerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fmt.Fprintln(os.Stderr, "etcd did not become ready within 60s")
		os.Exit(1)
	}

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(rest, "--etcd-servers="+client.String()))
	if err := cmd.Execute(); err != nil {
		e.Close()
		os.Exit(1)
	}
	e.Close()
}
