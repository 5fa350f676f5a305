package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/ipv6"
)

// oneCluster picks the cluster a command acts on: the only one, or the one --cluster names.
func oneCluster(cfg *config.Config) (*config.Cluster, error) {
	if len(cfg.Clusters) == 1 {
		return &cfg.Clusters[0], nil
	}
	return nil, fmt.Errorf("%d clusters configured (%s): choose one with --cluster", len(cfg.Clusters), strings.Join(cfg.Names(), ", "))
}

type controlFlags struct {
	configFlags
	dryRun  bool
	asJSON  bool
	verbose bool
}

func (f *controlFlags) register(cmd *cobra.Command) {
	// The command's own flags first: the configuration flags skip names already taken
	// (replication-manager has a "verbose" key too).
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the plan and why each replica was or was not chosen, change nothing")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the plan and result as JSON")
	cmd.Flags().BoolVar(&f.verbose, "verbose", false, "log each step as it runs")
	f.configFlags.register(cmd)
}

// run loads the cluster, runs one control action on a monitor of its own (no daemon needed)
// and prints the outcome.
func (f *controlFlags) run(cmd *cobra.Command, act func(context.Context, *config.Cluster, *cluster.Monitor) (cluster.Plan, *cluster.Result, error)) error {
	cfg, err := f.load(cmd)
	if err != nil {
		return err
	}
	c, err := oneCluster(cfg)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{code: 1}
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	if f.verbose {
		log.SetOutput(cmd.ErrOrStderr())
		log.SetLevel(logrus.DebugLevel)
	}
	var events *eventlog.Log
	if c.Settings.MonitoringDatadir != "" {
		// The same event file as the daemon, so the operator's action is on the record.
		events, _ = eventlog.OpenRotated(c.Settings.MonitoringDatadir+"/events.jsonl", 0,
			eventlog.RotationMB(c.Settings.LogRotateMaxSize, c.Settings.LogRotateMaxBackup))
		if events != nil {
			defer events.Close()
		}
	}
	m, err := newMonitorFor(c, events, log)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{code: 1}
	}
	defer m.Close()
	routers, closeRouters, err := routersFor(c, log)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{code: 1}
	}
	defer closeRouters()
	m.SetRouters(routers)
	ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	p, res, err := act(ctx, c, m)
	out := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Plan   cluster.Plan    `json:"plan"`
			Result *cluster.Result `json:"result,omitempty"`
			Error  string          `json:"error,omitempty"`
		}{p, res, errText(err)})
	} else {
		printPlan(out, p)
		if res != nil {
			printResult(out, res)
		}
	}
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", p.Kind, err)
		return exitError{code: 1}
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func printPlan(w io.Writer, p cluster.Plan) {
	fmt.Fprintf(w, "%s of cluster %s: master %s", p.Kind, p.Cluster, p.OldMaster)
	if p.NewMaster.Host != "" {
		fmt.Fprintf(w, " -> %s", p.NewMaster)
	}
	fmt.Fprintln(w)
	if p.Refused != "" {
		fmt.Fprintf(w, "refused (%s): %s\n", p.Code, p.Refused)
	}
	if len(p.Election.Candidates) > 0 {
		fmt.Fprintf(w, "election: %s\n", p.Election.Reason)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  CANDIDATE\tDEPTH\tELIGIBLE\tPOSITION\tBEHIND\tWHY")
		for _, c := range p.Election.Candidates {
			why := strings.Join(c.Reasons, "; ")
			if why == "" {
				why = strings.Join(c.Notes, "; ") // how an eligible server was ranked
			}
			if why == "" {
				why = "-"
			}
			pos := c.Position.String()
			if pos == "" {
				pos = "-"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%v\t%s\t%d\t%s\n", c.Server, c.Depth, c.Eligible, pos, c.Behind, why)
		}
		tw.Flush()
	}
	if len(p.Steps) > 0 {
		fmt.Fprintln(w, "steps:")
		for i, s := range p.Steps {
			line := fmt.Sprintf("  %d. %s", i+1, s.Kind)
			if s.Server.Host != "" {
				line += " " + s.Server.String()
			}
			if s.Detail != "" {
				line += ": " + s.Detail
			}
			fmt.Fprintln(w, line)
		}
	}
}

func printResult(w io.Writer, r *cluster.Result) {
	fmt.Fprintln(w, "result:")
	for _, s := range r.Steps {
		status := "ok"
		switch {
		case s.Error != "":
			status = "FAILED: " + s.Error
		case s.Skipped != "":
			status = "skipped: " + s.Skipped
		}
		server := ""
		if s.Step.Server.Host != "" {
			server = " " + s.Step.Server.String()
		}
		fmt.Fprintf(w, "  %-18s%s  %s  %s\n", s.Step.Kind, server, s.Duration.Round(time.Microsecond), status)
	}
	if r.Promoted {
		fmt.Fprintf(w, "new master writable after %s, done in %s\n", r.WritableAfter.Round(time.Microsecond), r.Duration.Round(time.Microsecond))
	}
}

func newFailoverCmd() *cobra.Command {
	var (
		f     controlFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Replace a dead master by the safest replica (no daemon needed)",
		Long: "Probes the cluster, elects the replica to promote and, unless --dry-run, promotes it and " +
			"repoints the other replicas. A master that still answers is not failed over (use " +
			"switchover) unless --force. Exits 1 when refused or when a step failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, _ *config.Cluster, m *cluster.Monitor) (cluster.Plan, *cluster.Result, error) {
				return m.Failover(ctx, f.dryRun, force)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "fail over even though the master answers (it will be left read-write beside the new master)")
	return cmd
}

func newSwitchoverCmd() *cobra.Command {
	var (
		f        controlFlags
		prefered string
	)
	cmd := &cobra.Command{
		Use:   "switchover",
		Short: "Move the master role to a replica without losing a commit (no daemon needed)",
		Long: "Freezes the master, lets the chosen replica apply every transaction, promotes it, and makes " +
			"the old master and the other replicas replicate from it. --prefered host:port chooses the " +
			"new master; otherwise preferred hosts, then the most advanced replica.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var target *ipv6.HostPort
			if prefered != "" {
				hp, err := ipv6.ParseHostPort(prefered, ipv6.DefaultPort)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "--prefered: %v\n", err)
					return exitError{code: 1}
				}
				target = &hp
			}
			return f.run(cmd, func(ctx context.Context, c *config.Cluster, m *cluster.Monitor) (cluster.Plan, *cluster.Result, error) {
				if target != nil {
					hosts, _ := c.Settings.Hosts()
					known := false
					for _, h := range hosts {
						known = known || ipv6.SameAddr(h, *target)
					}
					if !known {
						return cluster.Plan{Kind: cluster.PlanSwitchover, Cluster: c.Name}, nil,
							fmt.Errorf("--prefered %s is not in db-servers-hosts of cluster %s", target, c.Name)
					}
				}
				return m.Switchover(ctx, target, f.dryRun)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&prefered, "prefered", "", "host:port of the replica to promote ([ipv6]:port for IPv6)")
	return cmd
}

// newActCmd runs any plan kind through the cluster's one action path, as the API and the
// monitor do: rejoin, repoint, bootstrap and cleanup have no command of their own.
func newActCmd() *cobra.Command {
	var (
		f      controlFlags
		server string
		force  bool
	)
	kinds := make([]string, len(cluster.PlanKinds))
	for i, k := range cluster.PlanKinds {
		kinds[i] = string(k)
	}
	cmd := &cobra.Command{
		Use:   "act KIND",
		Short: "Run one plan (" + strings.Join(kinds, ", ") + ") through the action path (no daemon needed)",
		Long: "Decides the plan on a fresh probe and, unless --dry-run, runs it: rejoin (a former master " +
			"replicates from the master at its own position, --server), repoint (a replica follows the master, " +
			"--server), relay (the replicas of a dead relay follow the relay's source, --server names the relay), " +
			"bootstrap (master-slave replication on servers that have none), cleanup (no replication, " +
			"empty binary logs), failover, switchover. Exits 1 when refused or when a step failed.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := cluster.PlanKind(args[0])
			known := false
			for _, k := range cluster.PlanKinds {
				known = known || k == kind
			}
			if !known {
				fmt.Fprintf(cmd.ErrOrStderr(), "act: unknown plan kind %q (one of %s)\n", args[0], strings.Join(kinds, ", "))
				return exitError{code: 1}
			}
			req := cluster.ActionRequest{Kind: kind, DryRun: f.dryRun, Force: force, Origin: "cli", Wait: cluster.OperatorWait}
			if server != "" {
				hp, err := ipv6.ParseHostPort(server, ipv6.DefaultPort)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "--server: %v\n", err)
					return exitError{code: 1}
				}
				req.Target = &hp
			}
			return f.run(cmd, func(ctx context.Context, _ *config.Cluster, m *cluster.Monitor) (cluster.Plan, *cluster.Result, error) {
				return m.Act(ctx, req)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&server, "server", "", "host:port the plan moves (rejoin, repoint), promotes (switchover) or whose replicas it moves (relay)")
	cmd.Flags().BoolVar(&force, "force", false, "failover: even a master that answers; relay: even a relay that answers")
	return cmd
}
