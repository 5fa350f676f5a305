package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"replication-manager-pro/agent"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// partitionParameters are the parameters SlapOS hands a MariaDB partition (the config-*
// of the root's request, partition-requests.json of `slapos render`): an entry of that file,
// or its "config" object alone.
type partitionParameters struct {
	Cluster       string `json:"cluster"`
	TCPPort       int    `json:"tcp-port"`
	UseIPv6       *bool  `json:"use-ipv6"`
	Credential    string `json:"repman-credential"`
	HeartbeatUser string `json:"heartbeat-user"`
	RequireSSL    bool   `json:"require-ssl"`
	RepmanURL     string `json:"repman-url"`
}

func readPartitionParameters(path string) (partitionParameters, error) {
	var p partitionParameters
	b, err := readSmallFile(path)
	if err != nil {
		return p, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return p, fmt.Errorf("%s: not a JSON object: %v", path, err)
	}
	if c, ok := top["config"]; ok {
		b = c
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&p); err != nil {
		return p, fmt.Errorf("%s: %v", path, err)
	}
	return p, nil
}

// newSlaposAgentCmd runs the native partition agent of a MariaDB partition.
func newSlaposAgentCmd() *cobra.Command {
	var (
		manager, caFile, cluster, host, partition, credFile, params string
		ipv4, ipv6Addr, mariadbd, level                             string
		port                                                        int
		insecure, legacy, noAutostart, noJobs                       bool
		poll, wait                                                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent --partition DIR (--parameters FILE | --cluster C --host H --port P --credential-file F) --manager URL",
		Short: "Partition agent of a MariaDB partition: bundle, data directory, start/stop on the manager's word, supervision",
		Long: "Runs in a SlapOS MariaDB partition what SlapOS' repman cron scripts do, reacting within a second: " +
			"long-polls the manager's watch route with the partition's credential (falling back to the need-* routes " +
			"every --poll-interval against a manager without it), installs the configuration bundle as SlapOS lays it " +
			"out (etc/mysql, var/lib/mysql/.system), creates the data directory with the manager's and the heartbeat " +
			"accounts, and starts, supervises (restart with backoff after a crash) and stops mariadbd itself; runs the " +
			"database jobs the manager queues in replication_manager_schema.jobs (backups, reseeds, logs, optimize). " +
			"The credential is read from a file (--credential-file, or repman-credential of --parameters), never an argument. " +
			"Stops mariadbd and exits on SIGINT or SIGTERM. See docs/slapos.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			fail := func(format string, a ...any) error {
				fmt.Fprintf(stderr, "slapos agent: "+format+"\n", a...)
				return exitError{code: 1}
			}
			cfg := agent.Config{Manager: manager, CAFile: caFile, Insecure: insecure, Cluster: cluster, Legacy: legacy,
				PollInterval: poll, WatchWait: wait, Mariadbd: mariadbd, HeartbeatUser: slapos.HeartbeatUser, NoJobs: noJobs}
			if params != "" {
				p, err := readPartitionParameters(params)
				if err != nil {
					return fail("--parameters: %v", err)
				}
				if cfg.Cluster == "" {
					cfg.Cluster = p.Cluster
				}
				if port == 0 {
					port = p.TCPPort
				}
				if cfg.Manager == "" {
					cfg.Manager = p.RepmanURL
				}
				cfg.Credential, cfg.RequireSSL = p.Credential, p.RequireSSL
				if p.HeartbeatUser != "" {
					cfg.HeartbeatUser = p.HeartbeatUser
				}
				if host == "" { // the partition's own address, by use-ipv6 as SlapOS decides
					if p.UseIPv6 == nil || *p.UseIPv6 {
						host = ipv6Addr
					} else {
						host = ipv4
					}
				}
			}
			if credFile != "" {
				b, err := readSmallFile(credFile)
				if err != nil {
					return fail("--credential-file: %v", err)
				}
				cfg.Credential = strings.TrimSpace(string(b))
			}
			if host == "" || port == 0 || cfg.Cluster == "" || cfg.Manager == "" || partition == "" {
				return fail("--partition, --manager, --cluster, --host and --port are required (or --parameters with --ipv6/--ipv4)")
			}
			addr, err := ipv6.ParseHostPort(host, port)
			if err != nil {
				return fail("--host: %v", err)
			}
			addr.Port = port
			cfg.Addr = addr
			if cfg.Partition, err = filepath.Abs(partition); err != nil {
				return fail("--partition: %v", err)
			}
			if noAutostart {
				f := false
				cfg.Autostart = &f
			}
			log := logrus.New()
			log.SetOutput(stderr)
			if lv, err := logrus.ParseLevel(level); err == nil {
				log.SetLevel(lv)
			}
			cfg.Log = log
			a, err := agent.New(cfg)
			if err != nil {
				return fail("%v", err)
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			if err := a.Run(ctx); err != nil {
				return fail("%v", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&partition, "partition", "", "the partition's directory")
	f.StringVar(&manager, "manager", "", "the manager's URL (http://[IPv6]:port of its plain listener, or https://...)")
	f.StringVar(&caFile, "ca-file", "", "CA certificate (PEM) of an https manager")
	f.BoolVar(&insecure, "insecure", false, "do not verify an https manager's certificate (SlapOS' scripts use curl -k)")
	f.StringVar(&params, "parameters", "", "the partition's parameters as JSON (an entry of partition-requests.json, or its config object)")
	f.StringVar(&cluster, "cluster", "", "cluster name (default: cluster of --parameters)")
	f.StringVar(&host, "host", "", "this database's host as the manager names it ([IPv6] or IPv4; default: --ipv6 or --ipv4 by use-ipv6)")
	f.IntVar(&port, "port", 0, "this database's port (default: tcp-port of --parameters)")
	f.StringVar(&ipv6Addr, "ipv6", "", "the partition's IPv6 (with --parameters)")
	f.StringVar(&ipv4, "ipv4", "", "the partition's IPv4 (with --parameters and use-ipv6 false)")
	f.StringVar(&credFile, "credential-file", "", "file holding the partition's credential (default: repman-credential of --parameters)")
	f.BoolVar(&legacy, "legacy", false, "poll the need-* routes instead of watching (replication-manager's routes)")
	f.DurationVar(&poll, "poll-interval", 2*time.Second, "interval of the legacy polling")
	f.DurationVar(&wait, "watch-wait", slapos.DefaultWatchWait, "how long one watch request waits for an action")
	f.BoolVar(&noAutostart, "no-autostart", false, "do not start mariadbd when the agent starts: wait for the manager's start")
	f.BoolVar(&noJobs, "no-jobs", false, "leave replication_manager_schema.jobs to another dbjobs script")
	f.StringVar(&mariadbd, "mariadbd", "", "mariadbd binary (default /usr/sbin/mariadbd, or RMP_MARIADBD)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warning, error")
	return cmd
}
