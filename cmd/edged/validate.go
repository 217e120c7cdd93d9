package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge/config"
)

func newValidateCmd() *cobra.Command {
	path := config.DefaultPath
	host := false
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config without touching anything; print its pools",
		Long: "validate reads the config (and the MetalLB manifests it names), checks every field and prints each\n" +
			"pool with its address count and the advertisements that announce it. It exits non-zero with an\n" +
			"error naming the file, line and field when something is wrong. Nothing on the system is changed.\n\n" +
			"With --host it also checks this host as the running user (the unit runs it so, as ExecStartPre):\n" +
			"HAProxy's master and stats sockets accept a connection, edged's HAProxy directories are writable and\n" +
			"`haproxy -c` accepts the operator's file; each problem is printed with what to fix.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			sum, err := cfg.Summary()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := config.WriteSummary(cmd.OutOrStdout(), path, sum); err != nil {
				return err
			}
			if !host {
				return nil
			}
			probs := cfg.CheckHost(cmd.Context())
			config.WriteHostProblems(cmd.OutOrStdout(), probs)
			if len(probs) > 0 {
				return &exitError{code: 3, err: errors.New("this host cannot run edged as configured; see the fixes above")}
			}
			return nil
		},
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().BoolVar(&host, "host", false, "also check HAProxy's sockets, edged's directories and `haproxy -c` as the running user")
	return cmd
}
