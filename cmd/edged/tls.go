package main

import (
	"fmt"
	"net/netip"
	"os/user"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldentooth/edged/edge/pki"
)

func init() { extraCommands = append(extraCommands, newTLSCmd) }

// defaultTLSDir is where configs/edged.yaml expects raft's certificates.
const defaultTLSDir = "/etc/edged/tls"

func newTLSCmd() *cobra.Command {
	dir := defaultTLSDir
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create the raft group's CA and host certificates",
		Long: "init creates the CA (ca.crt, ca.key) once; issue NAME signs a certificate for the host whose node.name\n" +
			"is NAME (CN and DNS SAN = NAME, client and server auth): NAME.crt and NAME.key. Existing files are never\n" +
			"replaced. Copy ca.crt, NAME.crt and NAME.key to that host's --dir; ca.key never leaves this one.",
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", dir, "directory of the CA and certificates")
	cmd.AddCommand(newTLSInitCmd(&dir), newTLSIssueCmd(&dir))
	return cmd
}

func newTLSInitCmd(dir *string) *cobra.Command {
	name := "edged raft CA"
	validity := pki.DefaultCAValidity
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the raft CA: ca.crt and ca.key (mode 0600) in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := pki.Init(*dir, name, validity)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created CA %q in %s (%s, %s), valid until %s\n",
				name, *dir, pki.CACert, pki.CAKey, ca.NotAfter.Format(time.DateOnly))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", name, "the CA's common name")
	cmd.Flags().DurationVar(&validity, "valid-for", validity, "lifetime")
	return cmd
}

func newTLSIssueCmd(dir *string) *cobra.Command {
	validity := pki.DefaultHostValidity
	group := "edged"
	var ips []string
	cmd := &cobra.Command{
		Use:   "issue NAME",
		Short: "Sign a host certificate for node NAME: NAME.crt and NAME.key in --dir",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner := pki.Owner{Gid: -1}
			if group != "" {
				g, err := user.LookupGroup(group)
				if err != nil {
					return fmt.Errorf("--group %s: %w (install the package first, or pass --group '' for a key only root reads)", group, err)
				}
				owner.Gid, _ = strconv.Atoi(g.Gid)
			}
			var addrs []netip.Addr
			for _, s := range ips {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return fmt.Errorf("--ip %q: %w", s, err)
				}
				addrs = append(addrs, a)
			}
			is, err := pki.Issue(*dir, args[0], addrs, validity, owner)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s: %s, %s, valid until %s\n",
				args[0], is.CertFile, is.KeyFile, is.Cert.NotAfter.Format(time.DateOnly))
			return nil
		},
	}
	cmd.Flags().DurationVar(&validity, "valid-for", validity, "lifetime (at most the CA's)")
	cmd.Flags().StringVar(&group, "group", group, "group that may read the key (mode 0640); empty: root only (0600)")
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "IP SANs to add (raft does not need them)")
	return cmd
}
