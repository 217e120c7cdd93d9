package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge"
	"github.com/goldentooth/edged/edge/admin"
	"github.com/goldentooth/edged/edge/config"
	"github.com/goldentooth/edged/raft"
)

func init() { extraCommands = append(extraCommands, newRecoverCmd) }

// recoverConfirm is what the operator types to go ahead without --yes.
const recoverConfirm = "recover"

// errRecoverAborted is returned when the operator did not confirm.
var errRecoverAborted = errors.New("recover aborted: nothing was changed")

func newRecoverCmd() *cobra.Command {
	path := config.DefaultPath
	members := ""
	yes := false
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "OFFLINE: make the surviving host(s) a new raft group after losing a majority for good",
		Long: "recover is for one situation: a majority of the edge hosts is gone for good and the rest cannot elect a leader.\n" +
			"Stop edged on every survivor, run recover on each with the same --members (the survivors; default: this\n" +
			"host alone), then start edged again. Every allocation and IP in this host's log is kept (entries that\n" +
			"were not yet committed become committed). The group gets a new cluster ID: hosts not listed are refused\n" +
			"if they come back with their old data; wipe their data dir and add them with `edged members add`.\n" +
			"See docs/operate.md, \"two of three died\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if admin.Running(cfg.Node.AdminSocket) {
				return fmt.Errorf("edged is running on this host (its admin socket %s answers): stop it first (systemctl stop edged); recover works offline only", cfg.Node.AdminSocket)
			}
			peers, err := parseMembers(members)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			out := cmd.OutOrStdout()
			plan, err := raft.Recover(edge.RaftConfig(cfg, log), peers, func(p raft.RecoveryPlan) error {
				writePlan(out, cfg.Node.DataDir, p)
				if yes {
					return nil
				}
				fmt.Fprintf(out, "Type %q to rewrite this host's raft state: ", recoverConfirm)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != recoverConfirm {
					return errRecoverAborted
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nRecovered: %s is now cluster %s with members %s.\nStart edged on every listed member (systemctl start edged), then add new hosts with `edged members add`.\n",
				cfg.Node.Name, plan.ID, peerList(plan.Members))
			return nil
		},
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().StringVar(&members, "members", "", "the survivors, comma-separated IDs, each optionally ID=host:port (default: this host alone)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// parseMembers reads "h1,h3=10.4.0.13:7950"; addresses left out come from
// the last raft configuration.
func parseMembers(s string) ([]raft.Peer, error) {
	var out []raft.Peer
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, addr, _ := strings.Cut(f, "=")
		if id == "" {
			return nil, fmt.Errorf("--members %q: empty ID in %q", s, f)
		}
		out = append(out, raft.Peer{ID: id, Address: addr})
	}
	return out, nil
}

func writePlan(w io.Writer, dataDir string, p raft.RecoveryPlan) {
	var ids []string
	for _, m := range p.Members {
		ids = append(ids, m.ID+"="+m.Address) // the same addresses, so the same cluster ID
	}
	fmt.Fprintf(w, `WARNING: edged recover rewrites the raft state in %s.
Use it only when a majority of the edge hosts is gone for good.

  last configuration: %s
  new configuration:  %s (every one a voter)
  log kept:           up to index %d; entries not yet committed become committed
  cluster ID:         %s -> %s

Hosts left out are refused if they come back with their old data: wipe their
data dir before they start, then add them with "edged members add".
Every other listed member must run, with edged stopped there too:
  edged recover --members %s

`, dataDir, peerList(p.Last), peerList(p.Members), p.LastIndex, p.Previous, p.ID, strings.Join(ids, ","))
}

func peerList(ps []raft.Peer) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s (%s)", p.ID, p.Address))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
