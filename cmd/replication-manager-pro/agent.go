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

// proxyCredential picks a node's entry of partition-credentials.json (slapos render): the
// one of cluster and kind, at addr when given, else the only one.
func proxyCredential(path, cluster, kind string, addr *ipv6.HostPort) (slapos.NodeCredential, error) {
	var all []slapos.NodeCredential
	b, err := readSmallFile(path)
	if err != nil {
		return slapos.NodeCredential{}, err
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return slapos.NodeCredential{}, fmt.Errorf("%s: want partition-credentials.json (a JSON array): %v", path, err)
	}
	var found []slapos.NodeCredential
	for _, c := range all {
		if c.Cluster != cluster || c.Kind != kind {
			continue
		}
		if addr != nil {
			a, err := ipv6.ParseHostPort(c.Address, 0)
			if err != nil || !ipv6.SameAddr(a, *addr) {
				continue
			}
		}
		found = append(found, c)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return slapos.NodeCredential{}, fmt.Errorf("%s: no %s of cluster %q", path, kind, cluster)
	}
	return slapos.NodeCredential{}, fmt.Errorf("%s: %d %s nodes of cluster %q: name one with --host and --port", path, len(found), kind, cluster)
}

// newSlaposAgentCmd runs the native partition agent of a MariaDB or ProxySQL partition.
func newSlaposAgentCmd() *cobra.Command {
	var (
		manager, caFile, cluster, host, partition, credFile, params string
		ipv4, ipv6Addr, mariadbd, level, kind, proxysqlBin          string
		credentials, sdProgram, sdCtl, sdConf                       string
		port                                                        int
		insecure, legacy, noAutostart, noJobs                       bool
		poll, wait, sdTimeout                                       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent --partition DIR (--parameters FILE | --cluster C --host H --port P --credential-file F) --manager URL",
		Short: "Partition agent of a MariaDB or ProxySQL partition: bundle, data directory, start/stop on the manager's word, supervision",
		Long: "Runs in a SlapOS MariaDB partition what SlapOS' repman cron scripts do, reacting within a second: " +
			"long-polls the manager's watch route with the partition's credential (falling back to the need-* routes " +
			"every --poll-interval against a manager without it), installs the configuration bundle as SlapOS lays it " +
			"out (etc/mysql, var/lib/mysql/.system), creates the data directory with the manager's and the heartbeat " +
			"accounts, and starts, supervises (restart with backoff after a crash) and stops mariadbd itself; runs the " +
			"database jobs the manager queues in replication_manager_schema.jobs (backups, reseeds, logs, optimize). " +
			"With --kind proxysql it does the same for a cluster's ProxySQL in the partition that runs it (SlapOS: the " +
			"repman root partition): the bundle's proxysql.cnf in etc/repman/proxy/proxysql-<cluster>.cnf, the datadir " +
			"var/lib/proxy/<cluster>, proxysql -f -c ... -D ... --reload; the node is the ProxySQL's admin address " +
			"(--host, --port, or the entry of --credentials partition-credentials.json). " +
			"With --supervisorctl-program the agent runs nothing itself: it drives that program of the partition's " +
			"supervisord with supervisorctl start|stop|restart|status (-c --supervisord-conf). " +
			"The credential is read from a file (--credential-file, repman-credential of --parameters, or --credentials), " +
			"never an argument. Stops the service it runs (not a supervisord program) and exits on SIGINT or SIGTERM. " +
			"See docs/slapos.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			fail := func(format string, a ...any) error {
				fmt.Fprintf(stderr, "slapos agent: "+format+"\n", a...)
				return exitError{code: 1}
			}
			cfg := agent.Config{Manager: manager, CAFile: caFile, Insecure: insecure, Cluster: cluster, Legacy: legacy,
				PollInterval: poll, WatchWait: wait, Mariadbd: mariadbd, HeartbeatUser: slapos.HeartbeatUser, NoJobs: noJobs,
				Kind: kind, ProxySQL: proxysqlBin}
			if kind != agent.KindDatabase && kind != agent.KindProxySQL {
				return fail("--kind %q: want %s or %s", kind, agent.KindDatabase, agent.KindProxySQL)
			}
			if credentials != "" {
				var at *ipv6.HostPort
				if host != "" && port != 0 {
					a, err := ipv6.ParseHostPort(host, port)
					if err != nil {
						return fail("--host: %v", err)
					}
					a.Port = port
					at = &a
				}
				nc, err := proxyCredential(credentials, cluster, kind, at)
				if err != nil {
					return fail("--credentials: %v", err)
				}
				a, err := ipv6.ParseHostPort(nc.Address, 0)
				if err != nil {
					return fail("--credentials: address %q: %v", nc.Address, err)
				}
				host, port, cfg.Credential = a.Host, a.Port, nc.Credential
				if partition == "" {
					partition = nc.PartitionPath
				}
			}
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
			if sdProgram != "" {
				sd := &agent.Supervisord{Program: sdProgram, Ctl: sdCtl, Conf: sdConf, Timeout: sdTimeout}
				if sd.Conf == "" {
					// SlapOS writes the partition's supervisord configuration there.
					if c := filepath.Join(cfg.Partition, "etc", "supervisord.conf"); fileOK(c) {
						sd.Conf = c
					}
				}
				cfg.Supervisord = sd
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
	f.StringVar(&kind, "kind", agent.KindDatabase, "the partition's service: database (mariadbd) or proxysql")
	f.StringVar(&proxysqlBin, "proxysql", "", "proxysql binary (--kind proxysql; default: proxysql in PATH)")
	f.StringVar(&credentials, "credentials", "", "partition-credentials.json of slapos render: this node's address, credential and partition (its entry of --cluster and --kind)")
	f.StringVar(&sdProgram, "supervisorctl-program", "", "drive this supervisord program with supervisorctl instead of running the service")
	f.StringVar(&sdCtl, "supervisorctl", "supervisorctl", "supervisorctl binary (with --supervisorctl-program)")
	f.StringVar(&sdConf, "supervisord-conf", "", "supervisord configuration for supervisorctl -c (default: <partition>/etc/supervisord.conf when present)")
	f.DurationVar(&sdTimeout, "supervisorctl-timeout", 2*time.Minute, "bound of one supervisorctl call")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warning, error")
	return cmd
}

func fileOK(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
