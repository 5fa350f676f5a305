package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newClientManagersCmd builds "client managers": the managers sharing the clusters through
// etcd, which clusters each leads, and what its lease has left.
func newClientManagersCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "managers",
		Short: "Print the managers sharing the clusters (etcd), the clusters each leads and its lease",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := f.connect(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			code, b, err := c.get(ctx, "/api/managers")
			if err != nil {
				return fail(cmd, err)
			}
			if code != http.StatusOK {
				return fail(cmd, fmt.Errorf("managers: HTTP %d: %s", code, strings.TrimSpace(string(b))))
			}
			out := cmd.OutOrStdout()
			if f.json {
				out.Write(b)
				return nil
			}
			var ans struct {
				HA       bool `json:"ha"`
				Self     string
				Managers []struct {
					Name           string        `json:"name"`
					Addr           string        `json:"addr"`
					Self           bool          `json:"self"`
					Leads          []string      `json:"leads"`
					LeaseRemaining time.Duration `json:"leaseRemainingNs"`
				} `json:"managers"`
				Leaders map[string]string `json:"leaders"`
			}
			if err := json.Unmarshal(b, &ans); err != nil {
				return fail(cmd, fmt.Errorf("managers: %w", err))
			}
			if !ans.HA {
				fmt.Fprintln(out, "this manager works alone (no etcd-endpoints): it leads every cluster")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "MANAGER\tADDRESS\tLEASE LEFT\tLEADS")
			for _, m := range ans.Managers {
				name := m.Name
				if m.Self {
					name += " (this one)"
				}
				leads := strings.Join(m.Leads, ",")
				if leads == "" {
					leads = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, m.Addr, m.LeaseRemaining.Round(time.Second), leads)
			}
			tw.Flush()
			var clusters []string
			for c := range ans.Leaders {
				clusters = append(clusters, c)
			}
			sort.Strings(clusters)
			for _, c := range clusters {
				if ans.Leaders[c] == "" {
					fmt.Fprintf(out, "cluster %s: no leader now (etcd unreachable or without quorum?)\n", c)
				}
			}
			return nil
		},
	}
}
