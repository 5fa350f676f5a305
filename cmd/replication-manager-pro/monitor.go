package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"replication-manager-pro/api"
	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/ha"
	"replication-manager-pro/haproxy"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	_ "replication-manager-pro/orchestrator/local" // registers prov-orchestrator "local"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/proxysql"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
	"replication-manager-pro/web"
)

// configFlags are the flags every command reading the configuration shares.
type configFlags struct {
	path     string
	clusters []string
}

func (f *configFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.path, "config", "", "main configuration file (default: config.toml in /etc/replication-manager/ or .)")
	fs.StringSliceVar(&f.clusters, "cluster", nil, "only these clusters (comma-separated)")
	config.AddFlags(fs)
}

// load reads the configuration, printing every problem on stderr (exit 1) when it is invalid.
func (f *configFlags) load(cmd *cobra.Command) (*config.Config, error) {
	stderr := cmd.ErrOrStderr()
	path := f.path
	if path == "" {
		p, err := config.FindConfig()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, exitError{code: 1}
		}
		path = p
	}
	cfg, err := config.Load(path, config.Options{Overrides: config.Overrides(cmd.Flags()), Clusters: f.clusters, Env: os.Environ()})
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p.Error())
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, exitError{code: 1}
	}
	return cfg, nil
}

// reloader re-reads the configuration files with the same command-line overrides, for the
// API's settings reload (every cluster of the files, not only --cluster ones: a cluster
// added through the API is reloaded from its section).
func (f *configFlags) reloader(cmd *cobra.Command) func() (*config.Config, error) {
	overrides := config.Overrides(cmd.Flags())
	return func() (*config.Config, error) {
		path := f.path
		if path == "" {
			p, err := config.FindConfig()
			if err != nil {
				return nil, err
			}
			path = p
		}
		return config.Load(path, config.Options{Overrides: overrides, Env: os.Environ()})
	}
}

// newMonitorFor builds the monitor of one configured cluster against real servers.
func newMonitorFor(c *config.Cluster, events *eventlog.Log, log *logrus.Logger) (*cluster.Monitor, error) {
	mc, err := cluster.MonitorConfigFrom(c)
	if err != nil {
		return nil, err
	}
	cred, err := c.Settings.DBCredential()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
	}
	opt := mariadb.Options{
		ConnectTimeout: time.Duration(c.Settings.DBServersConnectTimeout) * time.Second,
		ReadTimeout:    time.Duration(c.Settings.DBServersReadTimeout) * time.Second,
	}
	return cluster.NewMonitor(mc, cluster.MariaDBDialer(cred.User, cred.Password, opt), events, log), nil
}

// monitorFactory builds a cluster's monitor with its routers, and its orchestrator (kept in
// orchs until the monitor is released), for the fleet.
func monitorFactory(events *eventlog.Log, log *logrus.Logger, orchs *orchestrators, coord *ha.Coordinator) cluster.Factory {
	return func(c *config.Cluster) (*cluster.Monitor, func(), error) {
		m, err := newMonitorFor(c, events, log)
		if err != nil {
			return nil, nil, err
		}
		// What was started so far, undone in reverse order on release or on a failure.
		var started []func()
		undo := func() {
			for i := len(started) - 1; i >= 0; i-- {
				started[i]()
			}
		}
		fail := func(err error) (*cluster.Monitor, func(), error) {
			undo()
			m.Close()
			return nil, nil, err
		}
		if coord != nil {
			// Several managers: this one acts on the cluster only while it leads it.
			lead := coord.Lead(c.Name, func() bool { _, busy := m.Running(); return busy })
			m.SetShared(lead, lead.Store())
			started = append(started, func() { coord.Forget(c.Name) })
		}
		routers, closeRouters, err := routersFor(c, log)
		if err != nil {
			return fail(err)
		}
		started = append(started, closeRouters)
		forget, err := orchs.build(c, m)
		if err != nil {
			return fail(err)
		}
		started = append(started, forget)
		m.SetRouters(routers)
		stopBackups, err := startBackups(c, m, orchs.forMonitor(m), log) // backup.go
		if err != nil {
			return fail(err)
		}
		started = append(started, stopBackups)
		hb, err := startHeartbeat(c, m, log)
		if err != nil {
			return fail(err)
		}
		started = append(started, hb.Stop)
		ja, err := startJobAccount(c, m, log)
		if err != nil {
			return fail(err)
		}
		started = append(started, ja.Stop)
		return m, undo, nil
	}
}

// routersFor builds the traffic routers a cluster's configuration asks for. The returned
// function closes them.
func routersFor(c *config.Cluster, log *logrus.Logger) ([]router.Router, func(), error) {
	var out []router.Router
	var closers []func() error
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	if c.Settings.ProxySQL {
		cred, err := c.Settings.DBCredential()
		if err != nil {
			return nil, nil, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
		}
		timeout := time.Duration(c.Settings.DBServersConnectTimeout) * time.Second
		rs, err := proxysql.NewFromSettings(c.Name, &c.Settings, proxysql.MariaDBAccounts(cred.User, cred.Password, timeout), log.WithField("cluster", c.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("cluster %s: proxysql: %w", c.Name, err)
		}
		for _, r := range rs {
			out = append(out, r)
			closers = append(closers, r.Close)
		}
	}
	if c.Settings.HAProxy {
		for k, h := range c.Settings.List("haproxy-servers") {
			hs, err := haproxy.SettingsFrom(c, k)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			name := fmt.Sprintf("haproxy %s (%s)", h, hs.Socket())
			out = append(out, haproxy.NewRouter(name, haproxy.NewClient(hs.Socket()), hs, log.WithField("cluster", c.Name)))
		}
	}
	return out, closeAll, nil
}

func newDiscoverCmd() *cobra.Command {
	var (
		cf     configFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Probe every server once and print each cluster's topology",
		Long: "Probes every configured server once, in parallel, and prints one row per server: " +
			"state, role, replication source, GTID position, lag and read_only, then the problems found. " +
			"Exits 2 when a server could not be reached, naming it on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(cmd)
			if err != nil {
				return err
			}
			log := logrus.New()
			log.SetOutput(io.Discard) // one probe: the table says it all
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()

			snaps := make([]*topology.Snapshot, len(cfg.Clusters))
			errs := make([]error, len(cfg.Clusters))
			var wg sync.WaitGroup
			for i := range cfg.Clusters {
				m, err := newMonitorFor(&cfg.Clusters[i], nil, log)
				if err != nil {
					errs[i] = err
					continue
				}
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					defer m.Close()
					snaps[i] = m.Tick(ctx)
				}(i)
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{code: 1}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(snaps); err != nil {
					return err
				}
			} else {
				for _, s := range snaps {
					printTopology(out, s)
				}
			}
			unreachable := 0
			for _, s := range snaps {
				for _, srv := range s.Servers {
					if !srv.Reachable {
						unreachable++
						fmt.Fprintf(cmd.ErrOrStderr(), "cluster %s: %s unreachable: %s\n", s.Cluster, srv.Addr, srv.ProbeError)
					}
				}
			}
			if unreachable > 0 {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the snapshots as JSON")
	return cmd
}

// printTopology writes one cluster's snapshot as a table for people.
func printTopology(w io.Writer, s *topology.Snapshot) {
	master := "none"
	if m, ok := s.MasterServer(); ok {
		master = m.Addr.String()
	}
	fmt.Fprintf(w, "cluster %s: topology %s, master %s, failable %v\n", s.Cluster, s.Kind, master, s.IsFailable)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATE\tROLE\tSOURCE\tGTID\tLAG\tREAD_ONLY")
	for _, srv := range s.Servers {
		source, lag := "-", "-"
		if r, ok := srv.PrimaryReplication(); ok {
			source = r.Source.String()
			if r.Lag != nil {
				lag = fmt.Sprintf("%ds", *r.Lag)
			} else {
				lag = "null"
			}
		}
		gtidPos, ro := srv.CurrentPos.String(), fmt.Sprint(srv.ReadOnly)
		if !srv.Reachable {
			ro = "?"
			if gtidPos == "" {
				gtidPos = "?"
			}
		}
		if gtidPos == "" {
			gtidPos = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", srv.Addr, srv.State, srv.Role, source, gtidPos, lag, ro)
	}
	tw.Flush()
	for _, p := range s.Problems {
		where := ""
		if p.Server != "" {
			where = " " + p.Server
		}
		fmt.Fprintf(w, "  %s %s%s: %s\n", p.Severity, p.Code, where, p.Message)
	}
	fmt.Fprintln(w)
}

func newMonitorCmd() *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Run the daemon: monitor every configured cluster",
		Long: "Runs one monitor per cluster at monitoring-ticker, logs state and topology changes, " +
			"keeps replicas read-only and records events in <monitoring-datadir>/events.jsonl. " +
			"Stops on SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(cmd)
			if err != nil {
				return err
			}
			if n, limit := len(cfg.Clusters), cfg.Default.MonitoringMaxClusters; limit > 0 && n > limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d clusters configured, more than monitoring-max-clusters (%d)\n", n, limit)
				return exitError{code: 1}
			}
			log := logrus.New()
			log.SetOutput(cmd.ErrOrStderr())
			log.SetLevel(logLevel(cfg.Default.LogLevel))
			// log-file and events.jsonl are rotated by size (log-rotate-max-size MB,
			// log-rotate-max-backup files kept).
			rot := eventlog.RotationMB(cfg.Default.LogRotateMaxSize, cfg.Default.LogRotateMaxBackup)
			if cfg.Default.LogFile != "" {
				f, err := eventlog.OpenRotating(cfg.Default.LogFile, rot)
				if err != nil {
					return fmt.Errorf("log-file: %w", err)
				}
				defer f.Close()
				log.SetOutput(io.MultiWriter(cmd.ErrOrStderr(), f))
			}
			warnAccepted(log, cfg)
			if cfg.Default.APICredentials == config.Defaults().APICredentials {
				log.Warn("api-credentials is replication-manager's well-known default (admin:repman): anyone who can reach the API port can log in; set your own")
			}
			events, err := eventlog.OpenRotated(filepath.Join(cfg.Default.MonitoringDatadir, "events.jsonl"), 0, rot)
			if err != nil {
				return fmt.Errorf("monitoring-datadir: %w", err)
			}
			defer events.Close()

			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			// Several managers share the clusters through etcd when etcd-endpoints is set.
			coord, err := startHA(ctx, &cfg.Default, log)
			if err != nil {
				return err
			}
			if coord != nil {
				defer coord.Close() // after the monitors stop (deferred below): hands every cluster over
				if err := shareSecrets(ctx, coord, cfg); err != nil {
					return err
				}
			}
			orchs := newOrchestrators(log)
			svc := services{orchs: orchs}
			fleet := cluster.NewFleet(ctx, monitorFactory(events, log, orchs, coord), log)
			svc.fleet = fleet
			defer fleet.StopAll()
			for _, c := range cfg.Clusters {
				if err := fleet.Start(c); err != nil {
					return err
				}
			}
			nodes := &slapos.Handlers{
				Clusters: slapos.ClusterSourceFunc(svc.SlapOSCluster),
				Bundles:  slapos.ConfiguratorBundles(clusterTLS),
				ProxyUp:  svc.proxyUp,
				// What partition agents report they did joins the event log (API, UI, stream).
				Report: func(name string, server ipv6.HostPort, r slapos.AgentReport) {
					events.Add(eventlog.Event{Cluster: name, Server: server.String(), Kind: "agent", Message: r.String(), Error: r.Error})
				},
				Log: log,
			}
			apiOpt := api.Options{Fleet: fleet, Events: events, Defaults: cfg.Default, LoadConfig: cf.reloader(cmd), Log: log,
				Nodes: nodes, Provisioned: svc.provisioned(log), Services: svc, Proxies: svc, Backups: backupAPI{fleet}, Inspect: api.OpenServerReader}
			if coord != nil {
				apiOpt.HA = coord
			}
			apiSrv, err := api.New(apiOpt)
			if err != nil {
				return err
			}
			nodes.Authorize = func(r *http.Request, c *config.Cluster) bool {
				return apiSrv.AuthorizedFor(r, &c.Settings, api.GrantProvConfig)
			}
			apiSrv.MountUI(web.Handler())
			if err := apiSrv.Start(); err != nil {
				return err
			}
			apiSrv.SetReady(true)
			go tenantSyncLoop(ctx, apiSrv) // tenant users back into a ProxySQL that lost them
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			apiSrv.Shutdown(sctx)
			scancel()
			fleet.StopAll()
			log.Info("monitoring stopped")
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

// clusterTLS gives a cluster's certificates (created once, kept in its working directory)
// for the bundles of databases with the ssl tag.
func clusterTLS(c *config.Cluster) (*configurator.TLSFiles, error) {
	if _, err := c.Settings.Hosts(); err != nil {
		return nil, err
	}
	// Made for the databases' and the proxies' addresses: tenants verify the server they
	// reach through a proxy.
	return configurator.ClusterTLSFor(&c.Settings, c.Name)
}

// logLevel maps repman's log-level (0 quiet .. 4+ debug; 3 is its default) to logrus.
func logLevel(n int) logrus.Level {
	switch {
	case n <= 0:
		return logrus.ErrorLevel
	case n == 1:
		return logrus.WarnLevel
	case n <= 3:
		return logrus.InfoLevel
	}
	return logrus.DebugLevel
}

// warnAccepted names, in one warning, the keys the configuration sets that are accepted but
// have no effect yet (`config check` says where each is set), and the clusters whose
// partition routes are anonymous only because their configuration does not say.
func warnAccepted(log *logrus.Logger, cfg *config.Config) {
	if keys := cfg.NoEffectKeys(); len(keys) > 0 {
		log.Warnf("accepted, no effect yet: %s (replication-manager keys this program does not implement yet; `config check` shows where each is set)",
			strings.Join(keys, ", "))
	}
	var implied []string
	for i := range cfg.Clusters {
		if cfg.Clusters[i].LegacyRoutesImplied() {
			implied = append(implied, cfg.Clusters[i].Name)
		}
	}
	if len(implied) > 0 {
		log.Warnf("clusters %s: prov-orchestrator is slapos and slapos-legacy-anonymous-routes is not set: partition routes "+
			"answer anonymous callers as replication-manager did (SlapOS's own scripts send no partition credential); "+
			"set slapos-legacy-anonymous-routes = false to require partition credentials", strings.Join(implied, ", "))
	}
}

// startHeartbeat writes the cluster's heartbeat when monitoring-write-heartbeat or
// test-inject-traffic asks for it (nil otherwise), with monitoring-write-heartbeat-credential
// or else db-servers-credential.
func startHeartbeat(c *config.Cluster, m *cluster.Monitor, log *logrus.Logger) (*cluster.Heartbeat, error) {
	s := &c.Settings
	if !s.MonitoringWriteHeartbeat && !s.TestInjectTraffic {
		return nil, nil
	}
	text, key := s.MonitoringWriteHeartbeatCredential, "monitoring-write-heartbeat-credential"
	if text == "" {
		text, key = s.DBServersCredential, "db-servers-credential"
	}
	cred, err := config.ParseCredential(text)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %s: %w", c.Name, key, err)
	}
	timeout := time.Duration(s.DBServersConnectTimeout) * time.Second
	return cluster.StartHeartbeat(m, cluster.HeartbeatConfig{
		Interval: s.MonitoringTickerDuration(), User: cred.User, Password: cred.Password,
		Options: mariadb.Options{ConnectTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout},
	}, log.WithField("cluster", c.Name)), nil
}

// startJobAccount keeps the job account on the cluster's databases when its anonymous
// bundles carry that account (prov-orchestrator slapos with slapos-legacy-anonymous-routes;
// nil otherwise), made with db-servers-credential.
func startJobAccount(c *config.Cluster, m *cluster.Monitor, log *logrus.Logger) (*slapos.JobAccountKeeper, error) {
	s := &c.Settings
	if s.ProvOrchestrator != slapos.Name || !s.SlapOSLegacyAnonymousRoutes || s.APICredentialsSecureConfig {
		return nil, nil
	}
	cred, err := s.DBCredential()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
	}
	timeout := time.Duration(s.DBServersConnectTimeout) * time.Second
	opt := mariadb.Options{ConnectTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}
	return slapos.StartJobAccount(slapos.JobAccountConfig{
		Cluster: c.Name, WorkDir: slapos.WorkingDir(s), Interval: s.MonitoringTickerDuration(),
		Snapshot: m.Snapshot, Paused: func() bool { return m.Busy() || !m.Leading() },
		Open: func(addr ipv6.HostPort) (slapos.JobAccountServer, error) {
			return mariadb.Open(addr, cred.User, cred.Password, opt)
		},
		Log: log.WithField("cluster", c.Name),
	}), nil
}
