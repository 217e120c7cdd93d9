package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
)

func init() {
	extraCommands = append(extraCommands, newMembersCmd, newDrainCmd(true), newDrainCmd(false))
}

// adminTimeout bounds one admin request; a membership change commits in
// well under a second on a healthy group.
const adminTimeout = 10 * time.Second

// adminFlags are the flags every admin-socket command takes.
type adminFlags struct {
	config string
	socket string
}

func (f *adminFlags) add(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVarP(&f.config, "config", "c", config.DefaultPath, "edged.yaml to read")
	cmd.PersistentFlags().StringVar(&f.socket, "socket", "", "admin socket (default: node.adminSocket from the config)")
}

// client is the admin client for the socket the flags name.
func (f *adminFlags) client() (*admin.Client, error) {
	if f.socket != "" {
		return admin.NewClient(f.socket), nil
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return admin.NewClient(cfg.Node.AdminSocket), nil
}

// withClient runs f with a client and a bounded context.
func (f *adminFlags) withClient(cmd *cobra.Command, do func(ctx context.Context, c *admin.Client) error) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
	defer cancel()
	return do(ctx, c)
}

func newMembersCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List and change the raft group's members through the local daemon",
		Long: "members talks to the local edged over its admin socket (access is the socket's permissions).\n" +
			"Changes run on the raft leader only; on another host they fail and name the leader.",
	}
	f.add(cmd)
	asJSON := false
	list := &cobra.Command{
		Use:   "list",
		Short: "Show each member: address, voter, leader, health, drain and IPs owned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *admin.Client) error {
				ms, err := c.Members(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(ms)
				}
				return admin.WriteMembers(cmd.OutOrStdout(), ms)
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	add := &cobra.Command{
		Use:   "add ID HOST:PORT",
		Short: "Add a host as a voter (start it first with an empty data dir and no raft.peers)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := c.AddMember(ctx, args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s)\n", args[0], args[1])
				return nil
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a member (its IPs move once its lease expires); not the leader itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := c.RemoveMember(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
				return nil
			})
		},
	}
	transfer := &cobra.Command{
		Use:   "transfer-leadership [ID]",
		Short: "Hand leadership to ID, or to any other voter",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			return f.withClient(cmd, func(ctx context.Context, c *admin.Client) error {
				if err := c.TransferLeadership(ctx, to); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "leadership transferred")
				return nil
			})
		},
	}
	cmd.AddCommand(list, add, remove, transfer)
	return cmd
}

// newDrainCmd is `edged drain` (drain) or `edged undrain`.
func newDrainCmd(drain bool) func() *cobra.Command {
	return func() *cobra.Command {
		var f adminFlags
		use, short, done := "drain [HOST]", "Move a host's IPs away and keep them away, across restarts, until undrain (default: this host)", "drained"
		if !drain {
			use, short, done = "undrain [HOST]", "Let a drained host announce again (default: this host)", "undrained"
		}
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				host := ""
				if len(args) == 1 {
					host = args[0]
				} else if cfg, err := config.Load(f.config); err == nil {
					host = cfg.Node.Name // so a refusal can say what to run on the leader
				}
				return f.withClient(cmd, func(ctx context.Context, c *admin.Client) error {
					err := c.SetDrain(ctx, host, drain)
					var nle *admin.NotLeaderError
					if errors.As(err, &nle) && nle.Leader != "" && host != "" {
						return fmt.Errorf("%w (there: edged %s %s)", err, strings.Fields(use)[0], host)
					}
					if err != nil {
						return err
					}
					if host == "" {
						host = "this host"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, host)
					return nil
				})
			},
		}
		f.add(cmd)
		return cmd
	}
}
