package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"replication-manager-pro/backup"
	"replication-manager-pro/jobs"
)

// newClientBackupCmds builds "client backups", "client backup", "client reseed" and
// "client jobs": the API's backup and job routes (docs/backup.md).
func newClientBackupCmds(f *clientFlags) []*cobra.Command {
	backups := &cobra.Command{
		Use:   "backups",
		Short: "List the cluster's stored backups, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []backup.Meta
			if err := clientGetJSON(cmd, f, "/backups", &list); err != nil {
				return fail(cmd, err)
			}
			if f.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSERVER\tKIND\tGTID\tSIZE\tTAKEN\tDURATION\tRESTIC")
			for _, b := range list {
				restic := b.Restic
				if restic == "" {
					restic = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.ID, b.Server, b.Kind, b.GTID, b.Size,
					b.Start.UTC().Format(time.RFC3339), b.Duration.Round(time.Millisecond), restic)
			}
			return tw.Flush()
		},
	}
	var jobServer string
	jobsCmd := &cobra.Command{
		Use:   "jobs",
		Short: "List the cluster's jobs (of --server), newest first, with their state and result",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/jobs"
			if jobServer != "" {
				path = "/servers/" + url.PathEscape(jobServer) + "/jobs"
			}
			var list []jobs.Job
			if err := clientGetJSON(cmd, f, path, &list); err != nil {
				return fail(cmd, err)
			}
			if f.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSERVER\tKIND\tSTATE\tCREATED\tDURATION\tRESULT")
			for _, j := range list {
				res := j.Result
				if j.Error != "" {
					res = "error: " + j.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Server, j.Kind, j.State,
					j.Created.UTC().Format(time.RFC3339), j.Duration.Round(time.Millisecond), res)
			}
			return tw.Flush()
		},
	}
	jobsCmd.Flags().StringVar(&jobServer, "server", "", "host:port of one server")

	serverJob := func(use, short string, actions map[string]string) *cobra.Command {
		var server, kind string
		var force bool
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				action, ok := actions[kind]
				if !ok {
					return fail(cmd, fmt.Errorf("--kind %q: physical or logical", kind))
				}
				if server == "" {
					return fail(cmd, fmt.Errorf("--server is needed"))
				}
				c, ctx, name, cancel, err := f.connectCluster(cmd)
				if err != nil {
					return fail(cmd, err)
				}
				defer cancel()
				form := url.Values{}
				if force {
					form.Set("force", "true")
				}
				code, b, err := c.post(ctx, clusterPath(name, "/servers/"+url.PathEscape(server)+"/actions/"+action), form)
				if err != nil {
					return fail(cmd, err)
				}
				if code != http.StatusOK && code != http.StatusAccepted {
					return fail(cmd, fmt.Errorf("%s: HTTP %d: %s", action, code, strings.TrimSpace(string(b))))
				}
				if f.json {
					cmd.OutOrStdout().Write(b)
					return nil
				}
				var j jobs.Job
				if err := json.Unmarshal(b, &j); err != nil {
					return fail(cmd, fmt.Errorf("%s: %w", action, err))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "job %d queued: %s on %s (follow it with: client jobs --server %s)\n", j.ID, j.Kind, j.Server, j.Server)
				return nil
			},
		}
		cmd.Flags().StringVar(&server, "server", "", "host:port of the server")
		cmd.Flags().StringVar(&kind, "kind", "physical", "physical (mariadb-backup) or logical (mariadb-dump)")
		cmd.Flags().BoolVar(&force, "force", false, "reseed: even a former master whose diverged transactions are not saved")
		return cmd
	}
	return []*cobra.Command{backups, jobsCmd,
		serverJob("backup", "Queue a backup of --server", map[string]string{"physical": "backup-physical", "logical": "backup-logical"}),
		serverJob("reseed", "Queue a reseed of --server from the newest backup of --kind (or a donor's stream)", map[string]string{"physical": "reseed-physicalbackup", "logical": "reseed-logicalbackup"}),
	}
}

// clientGetJSON GETs a cluster route and decodes its JSON answer.
func clientGetJSON(cmd *cobra.Command, f *clientFlags, rest string, v any) error {
	c, ctx, name, cancel, err := f.connectCluster(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	code, b, err := c.get(ctx, clusterPath(name, rest))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", rest, code, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}
