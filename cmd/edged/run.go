package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/announce"
	"github.com/goldentooth/edged/edge/certs"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/edge/health"
	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/edge/l2"
	"github.com/goldentooth/edged/edge/nft"
	"github.com/goldentooth/edged/edge/proxy"
	"github.com/goldentooth/edged/haproxy"
)

func init() { extraCommands = append(extraCommands, newRunCmd) }

func newRunCmd() *cobra.Command {
	path := config.DefaultPath
	logLevel := "" // empty: log.level from edged.yaml
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the edged daemon (what systemd starts)",
		Long: "run joins the raft group, allocates and announces LoadBalancer addresses and keeps HAProxy in step.\n" +
			"The first SIGINT/SIGTERM starts a graceful shutdown (hand addresses over, step down); a second exits at once.\n" +
			"SIGHUP reads the config again and applies what can change live; a file that fails validation is logged and ignored.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := new(slog.LevelVar)
			pinned := logLevel != ""
			if pinned {
				var l slog.Level
				if err := l.UnmarshalText([]byte(logLevel)); err != nil {
					return fmt.Errorf("--log-level: %w", err)
				}
				level.Set(l)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			// SIGHUP's default action ends the process: catch it before
			// anything else can take time.
			hangups := make(chan os.Signal, 1)
			signal.Notify(hangups, syscall.SIGHUP)
			defer signal.Stop(hangups)
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if !pinned {
				level.Set(cfg.Log.SlogLevel())
			}
			ctx, stop := signalContext(log)
			defer stop()
			app, err := wire(cfg, log)
			if err != nil {
				return err
			}
			if !pinned {
				app.UseLogLevel(level)
			}
			go reloadOnHangup(ctx, hangups, app.Reload)
			return app.Run(ctx)
		},
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().StringVar(&logLevel, "log-level", logLevel, "debug, info, warn or error; overrides log.level in the config, also across SIGHUP reloads (default: log.level, info)")
	return cmd
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once, as kubernetes/sample-controller's signal handler does.
func signalContext(log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		log.Info("signal received, shutting down gracefully (send again to exit at once)", "signal", sig.String())
		cancel()
		sig = <-ch
		log.Warn("second signal, exiting now", "signal", sig.String())
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// reloadOnHangup calls reload on every SIGHUP until ctx ends. reload (the
// appliance's) logs and counts its own outcome, so its error needs nothing
// more here.
func reloadOnHangup(ctx context.Context, hangups <-chan os.Signal, reload func() error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangups:
			_ = reload()
		}
	}
}

// wire builds the appliance from its parts, none of them started: the
// Service controller (when a kubeconfig or an in-cluster environment is
// there), HAProxy fed from its caches, and the layer-2 speaker following
// the pools and advertisements in force. The appliance starts and stops
// them.
func wire(cfg *config.Config, log *slog.Logger) (*edge.Appliance, error) {
	rest, err := kubeConfig(cfg.Kubernetes.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rest.QPS, rest.Burst = cfg.Kubernetes.QPS, cfg.Kubernetes.Burst
	kube.PatientDial(rest) // informers resume as soon as an apiserver returns
	client, err := kube.NewClient(rest)
	if err != nil {
		return nil, err
	}
	kp := kube.NewPart(cfg, client, log.With("part", "kubernetes"))
	// MetalLB's resources: the pools with kubernetes.metallbCRDs, the
	// ServiceL2Status objects whenever the CRD is installed.
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	kp.WatchMetalLB(dyn)
	hp := proxy.New(cfg, kp, kp.Event, log.With("part", "haproxy"))
	speaker := l2.New(cfg, kp.PoolConfig, log.With("part", "announce"))
	speaker.UseServiceLabels(kp.ServiceLabels)
	var probes []health.Probe
	if cfg.Health.HAProxy {
		probes = append(probes, hp.HealthProbe())
	}
	if cfg.Health.Carrier {
		probes = append(probes, speaker.CarrierProbe())
	}
	mon := health.New(health.Settings(cfg.Health), log.With("part", "health"), probes...)
	fw := nft.New(cfg, kp, kp.Event, nft.Open(), log.With("part", "forward"))
	app := edge.New(cfg, log, speaker, kp, hp, mon, fw)
	app.ReportStatus(hp)
	app.ReportStatus(mon)
	app.Registry().MustRegister(mon.Collectors()...)
	app.UsePools(kp)
	app.Registry().MustRegister(kube.Collectors()...)
	app.Registry().MustRegister(kp.Collector())
	app.Registry().MustRegister(announce.Collectors()...)
	app.Registry().MustRegister(haproxy.Collectors()...)
	app.Registry().MustRegister(nft.Collectors()...)
	app.Registry().MustRegister(certs.Collectors()...)
	return app, nil
}

// kubeConfig loads the kubeconfig file, or the in-cluster config when the
// path is empty.
func kubeConfig(path string) (*restclient.Config, error) {
	if path == "" {
		c, err := restclient.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes.kubeconfig is empty and edged is not in a cluster: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}
