package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"replication-manager-pro/api"
	"replication-manager-pro/backup"
	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/jobs"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// backupService is one cluster's backups: the store under <monitoring-datadir>/<cluster>/
// backups, restic, the data side of reseed plans, the jobs queue, and the scheduler.
type backupService struct {
	name   string
	s      config.Settings
	m      *cluster.Monitor
	store  *backup.Store
	restic *backup.Restic // nil unless backup-restic
	seeder *backup.Seeder
	remote *jobs.Remote
	queue  *jobs.Queue
	cron   *cron.Cron
	log    *logrus.Entry
	creds  backup.Credentials
	hosts  []ipv6.HostPort

	mu       sync.Mutex
	datadirs map[ipv6.HostPort]string
}

var (
	backupMu       sync.Mutex
	backupServices = map[*cluster.Monitor]*backupService{}
)

// backupsOf returns the backup service of the cluster monitored by m (nil: none).
func backupsOf(m *cluster.Monitor) *backupService {
	backupMu.Lock()
	defer backupMu.Unlock()
	return backupServices[m]
}

func storeDir(s *config.Settings, name string) string {
	return filepath.Join(s.MonitoringDatadir, name, "backups")
}

func resticFrom(s *config.Settings, tmp string) *backup.Restic {
	if !s.BackupRestic {
		return nil
	}
	return &backup.Restic{Binary: s.BackupResticBinaryPath, Repository: s.BackupResticRepository, Password: s.BackupResticPassword,
		TmpDir: tmp, Keep: keepFrom(s)}
}

func keepFrom(s *config.Settings) backup.Keep {
	return backup.Keep{Hourly: s.BackupKeepHourly, Daily: s.BackupKeepDaily, Weekly: s.BackupKeepWeekly, Monthly: s.BackupKeepMonthly, Yearly: s.BackupKeepYearly}
}

func ports(list []string) []int {
	var out []int
	for _, p := range list {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && n > 0 && n < 65536 {
			out = append(out, n)
		}
	}
	return out
}

// startBackups builds and starts the backup service of a cluster; the function returned
// stops it.
func startBackups(c *config.Cluster, m *cluster.Monitor, orch orchestrator.Orchestrator, log *logrus.Logger) (func(), error) {
	s := c.Settings
	cred, err := s.DBCredential()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
	}
	hosts, err := s.Hosts()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: db-servers-hosts: %w", c.Name, err)
	}
	st, err := backup.OpenStore(storeDir(&s, c.Name), c.Name)
	if err != nil {
		// Monitoring goes on without backups: the cause is logged once, reseeds are refused.
		log.WithField("cluster", c.Name).WithError(err).Error("backups, jobs and reseeds unavailable")
		return func() {}, nil
	}
	tmp := filepath.Join(s.MonitoringDatadir, c.Name, "tmp")
	os.MkdirAll(tmp, 0o750)
	b := &backupService{name: c.Name, s: s, m: m, store: st, restic: resticFrom(&s, tmp), log: log.WithField("cluster", c.Name),
		creds: backup.Credentials{User: cred.User, Password: cred.Password}, hosts: hosts, datadirs: map[ipv6.HostPort]string{}}
	b.queue = jobs.NewQueue(c.Name, filepath.Join(s.MonitoringDatadir, c.Name, "jobs.json"), b.log)
	senders := ports(s.List("scheduler-db-servers-sender-ports"))
	b.remote = &jobs.Remote{Advertise: s.MonitoringAddress, Ports: ports(s.List("scheduler-db-servers-receiver-ports")),
		SenderPort: func(a ipv6.HostPort) int {
			for i, h := range hosts {
				if ipv6.SameAddr(h, a) && i < len(senders) {
					return senders[i]
				}
			}
			if len(senders) > 0 {
				return senders[0]
			}
			return 4444
		},
		Open: func(a ipv6.HostPort) (*mariadb.Server, error) {
			return mariadb.Open(a, cred.User, cred.Password, mariadb.Options{})
		}}
	b.seeder = &backup.Seeder{Store: st, Restic: b.restic, Creds: b.creds, TmpDir: tmp,
		Dump: s.BackupMysqldumpPath, Client: s.BackupMysqlclientPath, LocalDataDir: b.localDataDir}
	if orch != nil {
		b.seeder.Node = func(a ipv6.HostPort) backup.Node { return orchNode(orch, m, a) }
	}
	if s.ProvOrchestrator == "slapos" || s.ProvOrchestrator == "onpremise" {
		b.seeder.Remote = b.remote
	}
	m.SetSeeding(&cluster.SeedConfig{Seeder: b.seeder, AutoSeed: s.Autoseed, User: cred.User, Password: cred.Password})
	if s.MonitoringScheduler {
		if err := b.schedule(); err != nil {
			b.queue.Close()
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	backupMu.Lock()
	backupServices[m] = b
	backupMu.Unlock()
	return func() {
		if b.cron != nil {
			<-b.cron.Stop().Done()
		}
		b.queue.Close()
		backupMu.Lock()
		delete(backupServices, m)
		backupMu.Unlock()
	}, nil
}

type localNode struct {
	o    orchestrator.Orchestrator
	m    *cluster.Monitor
	addr ipv6.HostPort
	dir  string
}

func (n localNode) DataDir() string { return filepath.Join(n.dir, "data") }
func (n localNode) Stop(ctx context.Context) error {
	return n.o.StopDatabase(ctx, n.addr, n.m.Snapshot())
}
func (n localNode) Start(ctx context.Context) error { return n.o.StartDatabase(ctx, n.addr) }

// orchNode is the process control the local orchestrator gives over a database.
func orchNode(o orchestrator.Orchestrator, m *cluster.Monitor, a ipv6.HostPort) backup.Node {
	if o == nil || o.Name() != "local" {
		return nil
	}
	t, err := o.Placement().Database("reseed", a)
	if err != nil || t.Partition == "" {
		return nil
	}
	return localNode{o: o, m: m, addr: t.Addr, dir: t.Partition}
}

// localDataDir returns a server's datadir when it is on this machine: a loopback address
// whose @@datadir exists here.
func (b *backupService) localDataDir(ctx context.Context, a ipv6.HostPort) string {
	b.mu.Lock()
	d, ok := b.datadirs[a]
	b.mu.Unlock()
	if ok {
		return d
	}
	host := ipv6.Unbracket(a.Host)
	ip, err := netip.ParseAddr(host)
	if !strings.EqualFold(host, "localhost") && (err != nil || !ip.IsLoopback()) {
		return ""
	}
	srv, err := mariadb.Open(a, b.creds.User, b.creds.Password, mariadb.Options{})
	if err != nil {
		return ""
	}
	defer srv.Close()
	d, err = srv.DataDir(ctx)
	if err != nil {
		return ""
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		d = ""
	}
	b.mu.Lock()
	b.datadirs[a] = d
	b.mu.Unlock()
	return d
}

// backupServer picks the server a scheduled backup is taken on, as the original does: a
// db-servers-backup-hosts entry that replicates, else the healthiest replica, else the
// master.
func backupServer(s *topology.Snapshot, preferred []ipv6.HostPort) (ipv6.HostPort, error) {
	if s == nil {
		return ipv6.HostPort{}, errors.New("no topology known yet")
	}
	healthy := func(srv *topology.Server) bool {
		r, ok := srv.PrimaryReplication()
		return srv.Reachable && !srv.Maintenance && ok && r.Healthy()
	}
	for _, p := range preferred {
		if srv, ok := s.Find(p); ok && healthy(srv) {
			return srv.Addr, nil
		}
	}
	best, bestLag := -1, int64(1<<62)
	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == s.Master || !healthy(srv) {
			continue
		}
		r, _ := srv.PrimaryReplication()
		lag := int64(0)
		if r.Lag != nil {
			lag = *r.Lag
		}
		if lag < bestLag {
			best, bestLag = i, lag
		}
	}
	if best >= 0 {
		return s.Servers[best].Addr, nil
	}
	if m, ok := s.MasterServer(); ok && m.Reachable {
		return m.Addr, nil
	}
	return ipv6.HostPort{}, errors.New("no server answers")
}

// Backup queues a backup of server (zero: the server the scheduler would pick).
func (b *backupService) Backup(kind backup.Kind, server ipv6.HostPort, origin string) (jobs.Job, error) {
	if server.Host == "" {
		var err error
		if server, err = backupServer(b.m.Snapshot(), b.backupHosts()); err != nil {
			return jobs.Job{}, err
		}
	}
	jk := jobs.BackupPhysical
	if kind == backup.Logical {
		jk = jobs.BackupLogical
	}
	return b.queue.Enqueue(server.String(), jk, origin, func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
		m, err := b.take(ctx, kind, server)
		if err != nil {
			return jobs.Outcome{}, err
		}
		out := jobs.Outcome{Backup: m.ID, Result: fmt.Sprintf("%s backup %s: %d bytes at %s", m.Kind, m.ID, m.Size, m.GTID)}
		if b.restic != nil {
			id, err := b.restic.Archive(ctx, b.store, m)
			if err != nil {
				return out, fmt.Errorf("backup %s stored, restic archive failed: %w", m.ID, err)
			}
			m.Restic = id
			b.store.Update(m)
			out.Result += ", restic snapshot " + id
			if err := b.restic.Forget(ctx, b.name); err != nil {
				b.log.WithError(err).Warn("restic retention not applied")
			}
		}
		if gone, err := b.store.Prune(keepFrom(&b.s)); err != nil {
			b.log.WithError(err).Warn("local retention not applied")
		} else if len(gone) > 0 {
			b.log.WithField("backups", gone).Info("expired backups removed")
		}
		return out, nil
	})
}

func (b *backupService) backupHosts() []ipv6.HostPort {
	l, _ := b.s.HostList("db-servers-backup-hosts")
	return l
}

// take runs one backup: by the manager itself when the server's files are on this
// machine (physical) or over the network (logical); through the jobs protocol otherwise.
func (b *backupService) take(ctx context.Context, kind backup.Kind, server ipv6.HostPort) (backup.Meta, error) {
	if kind == backup.Logical {
		return backup.TakeLogical(ctx, b.store, backup.LogicalOptions{Binary: b.s.BackupMysqldumpPath, Server: server, Creds: b.creds, TmpDir: b.seeder.TmpDir})
	}
	if dd := b.localDataDir(ctx, server); dd != "" {
		return backup.TakePhysical(ctx, b.store, backup.PhysicalOptions{Server: server, DataDir: dd, Creds: b.creds, TmpDir: b.seeder.TmpDir})
	}
	return backup.StorePhysicalStream(b.store, server.String(), "job", func(w io.Writer) error {
		_, err := b.remote.Receive(ctx, server, jobs.BackupPhysical.Task(), w)
		return err
	})
}

// Reseed queues a reseed of server through the cluster's one action path.
func (b *backupService) Reseed(kind backup.Kind, server ipv6.HostPort, force bool, origin string) (jobs.Job, error) {
	jk := jobs.ReseedPhysical
	if kind == backup.Logical {
		jk = jobs.ReseedLogical
	}
	return b.queue.Enqueue(server.String(), jk, origin, func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
		p, res, err := b.m.Act(ctx, cluster.ActionRequest{Kind: cluster.PlanReseed, Target: &server, Force: force, Origin: origin, Wait: cluster.OperatorWait, SeedKind: string(kind)})
		out := jobs.Outcome{}
		if len(p.Steps) > 1 && p.Steps[1].Seed != nil {
			out.Backup, out.Result = p.Steps[1].Seed.Backup, "reseeded from the "+p.Steps[1].Seed.String()
		}
		if err != nil {
			return out, err
		}
		if res != nil {
			out.Result += fmt.Sprintf(" in %s", res.Duration.Round(time.Millisecond))
		}
		return out, nil
	})
}

// Optimize queues OPTIMIZE of every table of server.
func (b *backupService) Optimize(server ipv6.HostPort, origin string) (jobs.Job, error) {
	return b.queue.Enqueue(server.String(), jobs.Optimize, origin, func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
		srv, err := mariadb.Open(server, b.creds.User, b.creds.Password, mariadb.Options{ReadTimeout: time.Hour})
		if err != nil {
			return jobs.Outcome{}, err
		}
		defer srv.Close()
		n, err := srv.OptimizeTables(ctx)
		return jobs.Outcome{Result: fmt.Sprintf("%d tables optimized", n)}, err
	})
}

// RotateLogTables queues the rotation of server's log tables, keeping
// scheduler-db-servers-logs-table-keep rotated copies.
func (b *backupService) RotateLogTables(server ipv6.HostPort, origin string) (jobs.Job, error) {
	return b.queue.Enqueue(server.String(), jobs.LogTables, origin, func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
		srv, err := mariadb.Open(server, b.creds.User, b.creds.Password, mariadb.Options{ReadTimeout: time.Minute})
		if err != nil {
			return jobs.Outcome{}, err
		}
		defer srv.Close()
		n, err := srv.RotateLogTables(ctx, b.s.SchedulerDBServersLogsTableKeep, time.Now())
		return jobs.Outcome{Result: fmt.Sprintf("%d log tables rotated, %d copies kept", n, b.s.SchedulerDBServersLogsTableKeep)}, err
	})
}

// logDir is where a server's collected logs go: <working dir>/<cluster>/<host>_<port>/log,
// the node directory the original uses (IPv6 hosts keep their brackets).
func logDir(s *config.Settings, cluster string, server ipv6.HostPort) string {
	return filepath.Join(configurator.NodeDatadir(s, cluster, server), "log")
}

// Logs queues the collection of server's error log (the original's "error" task) into
// <node dir>/log/log_error.log (logDir), through the jobs protocol; its slow query log
// into log_slow_query.log likewise.
func (b *backupService) Logs(kind jobs.Kind, server ipv6.HostPort, origin string) (jobs.Job, error) {
	return b.queue.Enqueue(server.String(), kind, origin, func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
		name := "log_error.log"
		if kind == jobs.SlowLog {
			name = "log_slow_query.log"
		}
		dir := logDir(&b.s, b.name, server)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return jobs.Outcome{}, err
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return jobs.Outcome{}, err
		}
		defer f.Close()
		res, err := b.remote.Receive(ctx, server, kind.Task(), f)
		return jobs.Outcome{Result: res}, err
	})
}

// schedule starts the cron entries of the scheduler-* keys (6 fields: seconds first).
func (b *backupService) schedule() error {
	b.cron = cron.New(cron.WithSeconds(), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	s := &b.s
	add := func(on bool, key, spec string, f func()) error {
		if !on {
			return nil
		}
		if _, err := b.cron.AddFunc(spec, f); err != nil {
			return fmt.Errorf("%s %q: %w", key, spec, err)
		}
		return nil
	}
	each := func(f func(ipv6.HostPort) (jobs.Job, error)) func() {
		return func() {
			for _, h := range b.hosts {
				if srv, ok := b.m.Snapshot().Find(h); ok && srv.Reachable {
					if _, err := f(srv.Addr); err != nil && !errors.Is(err, jobs.ErrBusy) {
						b.log.WithError(err).Warn("scheduled job not queued")
					}
				}
			}
		}
	}
	queue := func(kind backup.Kind) func() {
		return func() {
			if _, err := b.Backup(kind, ipv6.HostPort{}, "scheduler"); err != nil && !errors.Is(err, jobs.ErrBusy) {
				b.log.WithError(err).Warn("scheduled backup not queued")
			}
		}
	}
	errs := []error{
		add(s.SchedulerDBServersPhysicalBackup, "scheduler-db-servers-physical-backup-cron", s.SchedulerDBServersPhysicalBackupCron, queue(backup.Physical)),
		add(s.SchedulerDBServersLogicalBackup, "scheduler-db-servers-logical-backup-cron", s.SchedulerDBServersLogicalBackupCron, queue(backup.Logical)),
		add(s.SchedulerDBServersOptimize, "scheduler-db-servers-optimize-cron", s.SchedulerDBServersOptimizeCron,
			each(func(a ipv6.HostPort) (jobs.Job, error) { return b.Optimize(a, "scheduler") })),
	}
	if s.SchedulerDBServersLogs && b.seeder.Remote != nil {
		// The error log and the slow query log, each a job of its own (the original's
		// "error" and "slowquery" tasks).
		errs = append(errs, add(true, "scheduler-db-servers-logs-cron", s.SchedulerDBServersLogsCron, func() {
			each(func(a ipv6.HostPort) (jobs.Job, error) { return b.Logs(jobs.ErrorLog, a, "scheduler") })()
			each(func(a ipv6.HostPort) (jobs.Job, error) { return b.Logs(jobs.SlowLog, a, "scheduler") })()
		}))
	}
	errs = append(errs, add(s.SchedulerDBServersLogsTableRotate, "scheduler-db-servers-logs-table-rotate-cron", s.SchedulerDBServersLogsTableRotateCron,
		each(func(a ipv6.HostPort) (jobs.Job, error) { return b.RotateLogTables(a, "scheduler") })))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.cron.Start()
	return nil
}

// newRestoreCmd is `restore`: an operator who lost everything gets a backup back, from the
// cluster's backup store or from restic, as a data directory or into a server.
func newRestoreCmd() *cobra.Command {
	var (
		cf                       configFlags
		id, to, toSrv            string
		list, fromRestic, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "List backups, or restore one into a directory or a server",
		Long: "Lists the cluster's backups (--list: the local store, and restic's snapshots with backup-restic), or " +
			"restores backup --id ID: --to DIR makes a data directory mariadbd starts on (physical) or writes the SQL " +
			"dump there (logical); --to-server host:port loads a logical backup into a running server. A backup missing " +
			"from the local store is fetched from restic.",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.load(cmd)
			if err != nil {
				return err
			}
			c, err := oneCluster(cfg)
			if err != nil {
				return err
			}
			s := &c.Settings
			st, err := backup.OpenStore(storeDir(s, c.Name), c.Name)
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "rmp-restore-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			r := resticFrom(s, tmp)
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if list {
				local, err := st.List()
				if err != nil {
					return err
				}
				var snaps []backup.Snapshot
				if r != nil {
					if snaps, err = r.Snapshots(ctx, c.Name); err != nil {
						return err
					}
				}
				if asJSON {
					return json.NewEncoder(out).Encode(map[string]any{"local": local, "restic": snaps})
				}
				for _, m := range local {
					fmt.Fprintf(out, "%s\t%s\t%s\t%d bytes\tgtid %s\t%s\n", m.ID, m.Kind, m.Server, m.Size, m.GTID, m.Start.Format(time.RFC3339))
				}
				for _, sn := range snaps {
					fmt.Fprintf(out, "%s\t%s\trestic snapshot %s\t%s\n", sn.Backup, sn.Kind, sn.ID, sn.Time.Format(time.RFC3339))
				}
				return nil
			}
			if id == "" || (to == "" && toSrv == "") {
				return errors.New("restore: --id ID and --to DIR (or --to-server host:port) are needed (--list shows the backups)")
			}
			seeder := &backup.Seeder{Store: st, Restic: r}
			if fromRestic {
				st.Remove(id)
			}
			m, err := restoreFetch(ctx, seeder, id)
			if err != nil {
				return err
			}
			if err := st.Verify(m); err != nil {
				return err
			}
			f, err := st.Open(m)
			if err != nil {
				return err
			}
			defer f.Close()
			switch {
			case toSrv != "":
				if m.Kind != backup.Logical {
					return errors.New("restore: --to-server takes a logical backup; restore a physical one with --to DIR and start mariadbd on it")
				}
				addr, err := ipv6.ParseHostPort(toSrv, ipv6.DefaultPort)
				if err != nil {
					return err
				}
				cred, err := s.DBCredential()
				if err != nil {
					return err
				}
				if err := backup.LoadLogical(ctx, f, backup.LoadOptions{Binary: s.BackupMysqlclientPath, Server: addr, Creds: backup.Credentials{User: cred.User, Password: cred.Password}}); err != nil {
					return err
				}
				fmt.Fprintf(out, "backup %s loaded into %s; its position: SET GLOBAL gtid_slave_pos='%s'\n", m.ID, addr, m.GTID)
			case m.Kind == backup.Physical:
				if _, err := backup.RestorePhysical(ctx, f, to, backup.PrepareOptions{}); err != nil {
					return err
				}
				fmt.Fprintf(out, "backup %s restored into %s (a data directory at GTID %s: start mariadbd on it, then SET GLOBAL gtid_slave_pos='%s')\n", m.ID, to, m.GTID, m.GTID)
			default:
				if err := os.MkdirAll(to, 0o750); err != nil {
					return err
				}
				dst := filepath.Join(to, m.ID+".sql.gz")
				if err := copyFile(st.Path(m), dst); err != nil {
					return err
				}
				fmt.Fprintf(out, "backup %s written to %s (load it with: zcat | mariadb; it is at GTID %s)\n", m.ID, dst, m.GTID)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&id, "id", "", "backup id")
	cmd.Flags().StringVar(&to, "to", "", "directory to restore into (must not exist or be empty)")
	cmd.Flags().StringVar(&toSrv, "to-server", "", "server host:port to load a logical backup into")
	cmd.Flags().BoolVar(&list, "list", false, "list the backups")
	cmd.Flags().BoolVar(&fromRestic, "from-restic", false, "fetch the backup from restic even if the local store has it")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func restoreFetch(ctx context.Context, s *backup.Seeder, id string) (backup.Meta, error) {
	m, err := s.Store.Get(id)
	if err == nil || s.Restic == nil {
		return m, err
	}
	snaps, rerr := s.Restic.Snapshots(ctx, s.Store.Cluster)
	if rerr != nil {
		return backup.Meta{}, rerr
	}
	for _, sn := range snaps {
		if sn.Backup == id {
			return s.Restic.Fetch(ctx, s.Store, sn)
		}
	}
	return backup.Meta{}, fmt.Errorf("backup %s: not in the local store nor in restic", id)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o640)
}

// forMonitor returns the orchestrator built for the cluster monitored by m (nil: none).
func (r *orchestrators) forMonitor(m *cluster.Monitor) orchestrator.Orchestrator {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byMonitor[m].o
}

// backupAPI serves the API's backup routes from the clusters' backup services.
type backupAPI struct{ fleet *cluster.Fleet }

func (a backupAPI) service(name string) (*backupService, error) {
	m, ok := a.fleet.Get(name)
	if !ok {
		return nil, fmt.Errorf("cluster %s not found", name)
	}
	b := backupsOf(m.Monitor)
	if b == nil {
		return nil, fmt.Errorf("cluster %s: backups unavailable (see the log)", name)
	}
	return b, nil
}

func (a backupAPI) Backups(name string) (any, error) {
	b, err := a.service(name)
	if err != nil {
		return nil, err
	}
	l, err := b.store.List()
	if l == nil {
		l = []backup.Meta{}
	}
	return l, err
}

func (a backupAPI) Jobs(name, server string) (any, error) {
	b, err := a.service(name)
	if err != nil {
		return nil, err
	}
	l := b.queue.List(server)
	if l == nil {
		l = []jobs.Job{}
	}
	return l, nil
}

func (a backupAPI) CancelJobs(name string, server ipv6.HostPort, tasks []string) ([]int64, error) {
	b, err := a.service(name)
	if err != nil {
		return nil, err
	}
	var kinds []jobs.Kind
	for _, t := range tasks {
		k, ok := jobs.ParseKind(t)
		if !ok {
			names := make([]string, 0, len(jobs.Kinds))
			for _, k := range jobs.Kinds {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("task %q: %w (known: %s, or the original's task names)", t, api.ErrUnknownJob, strings.Join(names, ", "))
		}
		kinds = append(kinds, k)
	}
	ids := b.queue.CancelKinds(server.String(), kinds)
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}

func (a backupAPI) ServerJob(name string, server ipv6.HostPort, action string, force bool) (any, error) {
	b, err := a.service(name)
	if err != nil {
		return nil, err
	}
	switch action {
	case "backup-physical":
		return b.Backup(backup.Physical, server, "api")
	case "backup-logical":
		return b.Backup(backup.Logical, server, "api")
	case "reseed-physicalbackup":
		return b.Reseed(backup.Physical, server, force, "api")
	case "reseed-logicalbackup":
		return b.Reseed(backup.Logical, server, force, "api")
	case "optimize":
		return b.Optimize(server, "api")
	case "backup-error-log", "backup-slowquery-log":
		if b.seeder.Remote == nil {
			return nil, fmt.Errorf("%s: logs are collected through the partitions' jobs (prov-orchestrator slapos or onpremise); %s's own files are read directly when it runs on this machine", action, server)
		}
		kind := jobs.ErrorLog
		if action == "backup-slowquery-log" {
			kind = jobs.SlowLog
		}
		return b.Logs(kind, server, "api")
	}
	return nil, fmt.Errorf("%s: %w", action, api.ErrUnknownJob)
}
