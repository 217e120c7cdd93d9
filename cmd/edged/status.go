package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
)

func init() { extraCommands = append(extraCommands, newStatusCmd) }

func newStatusCmd() *cobra.Command {
	path := config.DefaultPath
	socket := ""
	asJSON := false
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the local daemon's view: members, leader, pools, allocations and announcers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				cfg, err := config.Load(path)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				socket = cfg.Node.AdminSocket
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := admin.Fetch(ctx, socket)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return admin.WriteText(cmd.OutOrStdout(), st)
		},
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket (default: node.adminSocket from the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
