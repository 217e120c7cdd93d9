package main

import (
	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge/config"
)

func newValidateCmd() *cobra.Command {
	path := config.DefaultPath
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config without touching anything; print its pools",
		Long: "validate reads the config (and the MetalLB manifests it names), checks every field and prints each\n" +
			"pool with its address count and the advertisements that announce it. It exits non-zero with an\n" +
			"error naming the file, line and field when something is wrong. Nothing on the system is changed.",
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
			return config.WriteSummary(cmd.OutOrStdout(), path, sum)
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}
