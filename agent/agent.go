// Package agent is the partition side of the SlapOS orchestrator: `replication-manager-pro
// slapos agent`, run in a MariaDB partition, does what SlapOS' repman cron scripts do
// (mysqld-need-start.sh, the config download of instance-mariadb.cfg, dbjobs: jobs.go) but
// reacts within a second: it long-polls the manager's watch route (orchestrator/slapos, watch.go) with the
// partition's credential, falls back to polling the original need-* routes against a
// manager without it, installs the configuration bundle as SlapOS lays it out, creates the
// data directory, and starts and supervises mariadbd itself. For a ProxySQL (Kind
// KindProxySQL, proxy.go) it does what proxy-need-start-stop.sh and download-proxy-config
// do. With Supervisord set it drives the partition's supervisord program through
// supervisorctl instead of running the process (supervisorctl.go).
package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// Config is one partition service's agent.
type Config struct {
	// Kind is KindDatabase ("" too) or KindProxySQL.
	Kind string
	// Manager is the manager's base URL: http://[2001:db8::5]:10001 (the plain listener
	// serves the partition routes) or https://... (with CAFile, or Insecure as curl -k).
	Manager  string
	CAFile   string
	Insecure bool
	Cluster  string
	// Addr is this node as the manager names it: a database by db-servers-hosts
	// ([IPv6]:port), a ProxySQL by its proxysql-servers host and admin port.
	Addr ipv6.HostPort
	// Partition is the partition's directory (absolute).
	Partition string
	// Credential is the partition's credential (repman-credential of its request).
	Credential string
	// HeartbeatUser is the heartbeat account created with the data directory
	// (heartbeat-user of the request); "" for none.
	HeartbeatUser string
	// RequireSSL makes the '%' accounts REQUIRE SSL (require-ssl of the request).
	RequireSSL bool
	// Autostart starts mariadbd when the agent starts, as the partition's supervisord
	// does, unless the manager's last word was a stop. Default true (see New).
	Autostart *bool
	// Legacy polls the need-* routes every PollInterval instead of watching (the agent
	// also falls back to it by itself against a manager without the watch route).
	Legacy       bool
	PollInterval time.Duration // default 2 s
	WatchWait    time.Duration // default 25 s
	// Mariadbd and SQLShare default to Debian's (internal/dbproc).
	Mariadbd, SQLShare string
	// ProxySQL is the proxysql binary (default: proxysql in PATH).
	ProxySQL string
	// ExtraArgs are more options of the service (mariadbd: after the bundle's my.cnf).
	ExtraArgs []string
	// Supervisord, when set, makes the agent drive this supervisord program with
	// supervisorctl instead of running the service itself.
	Supervisord *Supervisord
	// NoJobs leaves the jobs table alone (another dbjobs script runs them).
	NoJobs bool
	// StopTimeout bounds a clean stop (SIGTERM) before SIGKILL; default 10 minutes.
	StopTimeout time.Duration
	Log         logrus.FieldLogger
}

// Agent runs one partition service.
type Agent struct {
	cfg    Config
	l      Layout      // a database's
	pl     ProxyLayout // a ProxySQL's
	proxy  bool
	c      *client
	sup    service
	rep    *reporter // report.go: what the agent did, to the manager
	log    logrus.FieldLogger
	legacy bool

	down      time.Time // when the manager became unreachable; zero while reachable
	backoff   time.Duration
	restartOn bool // legacy: need-restart answered yes last time (it is not consumed)

	inJob atomic.Bool // a database job runs: a restore swaps the datadir, never bootstrap then
}

// New checks the configuration.
func New(cfg Config) (*Agent, error) {
	if cfg.Partition == "" || !strings.HasPrefix(cfg.Partition, "/") {
		return nil, fmt.Errorf("partition %q: want an absolute path", cfg.Partition)
	}
	if cfg.Cluster == "" || cfg.Addr.Host == "" || cfg.Addr.Port == 0 {
		return nil, errors.New("cluster and this node's address are required")
	}
	if cfg.Credential == "" {
		return nil, errors.New("the partition credential is required (repman-credential)")
	}
	switch cfg.Kind {
	case "", KindDatabase:
		cfg.Kind = KindDatabase
	case KindProxySQL:
		if strings.ContainsAny(cfg.Cluster, "/\\\x00") || strings.HasPrefix(cfg.Cluster, ".") {
			return nil, fmt.Errorf("cluster %q cannot name the ProxySQL's files", cfg.Cluster)
		}
	default:
		return nil, fmt.Errorf("kind %q: want %s or %s", cfg.Kind, KindDatabase, KindProxySQL)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.WatchWait <= 0 {
		cfg.WatchWait = slapos.DefaultWatchWait
	}
	if cfg.Mariadbd == "" {
		cfg.Mariadbd = dbproc.MariadbdPath
	}
	if cfg.SQLShare == "" {
		cfg.SQLShare = dbproc.SQLShare
	}
	if cfg.ProxySQL == "" {
		cfg.ProxySQL = "proxysql"
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.Autostart == nil {
		t := true
		cfg.Autostart = &t
	}
	if cfg.Supervisord != nil && cfg.Supervisord.Program == "" {
		return nil, errors.New("supervisord: the program name is required")
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log.WithFields(logrus.Fields{"cluster": cfg.Cluster, "server": cfg.Addr.String()})
	a := &Agent{cfg: cfg, l: Layout{Root: cfg.Partition}, pl: ProxyLayout{Root: cfg.Partition, Cluster: cfg.Cluster},
		proxy: cfg.Kind == KindProxySQL, c: c, log: log, legacy: cfg.Legacy, rep: newReporter(c, log)}
	spec := mariadbdSpec(a.l, cfg.Mariadbd, cfg.ExtraArgs, cfg.Addr)
	if a.proxy {
		spec = proxysqlSpec(a.pl, cfg.ProxySQL, cfg.ExtraArgs, cfg.Addr)
	}
	if cfg.Supervisord != nil {
		a.sup = newSupervisorctl(*cfg.Supervisord, spec.name, spec.ready, spec.wantFile, spec.statusFile, log)
		return a, nil
	}
	sup := newSupervisor(spec, log)
	sup.report = a.rep.send
	if cfg.StopTimeout > 0 {
		sup.stopTimeout = cfg.StopTimeout
	}
	a.sup = sup
	return a, nil
}

// Layout is a database partition's layout.
func (a *Agent) Layout() Layout { return a.l }

// ProxyLayout is a ProxySQL's layout in its partition.
func (a *Agent) ProxyLayout() ProxyLayout { return a.pl }

// Run runs the agent until ctx ends, then stops the service it runs itself (one under
// supervisord is left to supervisord). Only one agent runs per partition service (a lock
// file): a second one fails at once.
func (a *Agent) Run(ctx context.Context) error {
	lock := a.l.LockFile()
	if a.proxy {
		lock = a.pl.LockFile()
	}
	unlock, err := lockPartition(lock)
	if err != nil {
		return err
	}
	defer unlock()
	rctx, rcancel := context.WithCancel(context.Background())
	repDone := make(chan struct{})
	go func() { defer close(repDone); a.rep.loop(rctx) }()
	defer func() { rcancel(); <-repDone }() // after the service stopped: its last reports go too
	sctx, scancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); a.sup.loop(sctx) }()
	defer func() { scancel(); <-loopDone }() // stops the service, then returns
	if !a.cfg.NoJobs && !a.proxy {
		jctx, jcancel := context.WithCancel(ctx)
		jobsDone := make(chan struct{})
		go func() { defer close(jobsDone); a.jobsLoop(jctx) }() // jobs.go
		defer func() { jcancel(); <-jobsDone }()                // before the supervisor stops
	}

	mode := "watch"
	if a.legacy {
		mode = "legacy polling every " + a.cfg.PollInterval.String()
	}
	if a.cfg.Supervisord != nil {
		mode += ", supervisorctl program " + a.cfg.Supervisord.Program
	}
	a.log.WithField("partition", a.cfg.Partition).WithField("manager", a.cfg.Manager).WithField("kind", a.cfg.Kind).
		Infof("partition agent started (%s)", mode)
	installed := a.l.Bootstrapped() && exists(a.l.MyCnf())
	if a.proxy {
		installed = exists(a.pl.Cnf())
	}
	started := false
	if installed {
		// Installed earlier: the service runs from what is here, manager reachable or not;
		// the bundle is fetched again below.
		started = a.autostart(ctx)
	}
	fetched := false
	for ctx.Err() == nil {
		if !fetched {
			if err := a.install(ctx); err != nil {
				a.managerDown(err)
				if !sleep(ctx, a.backoff) {
					break
				}
				continue
			}
			a.managerUp()
			fetched = true
		}
		if !a.proxy && !a.l.Bootstrapped() && !a.inJob.Load() {
			if err := a.bootstrap(ctx); err != nil {
				a.log.WithError(err).Error("data directory not created; retrying")
				if !sleep(ctx, 10*time.Second) {
					break
				}
				continue
			}
		}
		if !started {
			started = a.autostart(ctx)
			if !started {
				started = true // the manager's last word was a stop: wait for its start
			}
		}
		if a.legacy {
			a.poll(ctx)
			sleep(ctx, a.cfg.PollInterval)
			continue
		}
		ans, err := a.c.watch(ctx, a.cfg.WatchWait)
		switch {
		case errors.Is(err, errNoWatch):
			a.legacy = true
			a.log.Warnf("the manager has no watch route (replication-manager?): polling the need-* routes every %s", a.cfg.PollInterval)
			continue
		case err != nil:
			if ctx.Err() != nil {
				continue
			}
			a.managerDown(err)
			sleep(ctx, a.backoff)
			continue
		}
		a.managerUp()
		for _, act := range ans.Actions {
			a.act(ctx, act, "watch")
		}
	}
	a.log.Info("partition agent stopping")
	return nil
}

func (a *Agent) autostart(ctx context.Context) bool {
	wanted := readWanted(a.l.WantFile())
	if a.proxy {
		wanted = readWanted(a.pl.WantFile())
	}
	if !*a.cfg.Autostart || !wanted {
		if !wanted {
			a.log.Infof("%s left stopped: the manager's last word was a stop", a.sup.name())
		}
		return false
	}
	st, err := a.sup.ask(ctx, "start", "autostart")
	if err != nil {
		a.log.WithError(err).Warnf("%s autostart", a.sup.name())
	}
	res, msg := outcome(err)
	a.rep.send(slapos.AgentReport{Action: "start", Via: "autostart", Result: res, Error: msg, Detail: pidDetail(st)})
	return true
}

// installBundle installs a downloaded bundle in the partition's layout.
func (a *Agent) installBundle(b []byte) (changed bool, err error) {
	if a.proxy {
		return a.pl.Install(b)
	}
	return a.l.Install(b)
}

// install downloads and installs the bundle.
func (a *Agent) install(ctx context.Context) error {
	b, err := a.c.bundle(ctx)
	if err != nil {
		return err
	}
	changed, err := a.installBundle(b)
	if err != nil {
		a.log.WithError(err).Error("configuration bundle not installed")
		return nil // a local problem: not the manager's; the service keeps what it has
	}
	if changed {
		cnf := a.l.MyCnf()
		if a.proxy {
			cnf = a.pl.Cnf()
		}
		a.log.WithField("config", cnf).Info("configuration bundle installed")
	}
	return nil
}

func (a *Agent) bootstrap(ctx context.Context) error {
	user, pw, err := clientLogin(a.l.DBJobCnf())
	if err != nil {
		return fmt.Errorf("accounts from %s: %w", a.l.DBJobCnf(), err)
	}
	t0 := time.Now()
	acc := Accounts{User: user, Password: pw, HeartbeatUser: a.cfg.HeartbeatUser, RequireSSL: a.cfg.RequireSSL}
	if err := a.l.Bootstrap(ctx, a.cfg.Mariadbd, a.cfg.SQLShare, acc); err != nil {
		return err
	}
	a.log.WithField("took", time.Since(t0).Round(time.Millisecond).String()).Info("data directory created")
	return nil
}

// act runs one action the manager asked for, and reports it.
func (a *Agent) act(ctx context.Context, action, via string) {
	log := a.log.WithField("action", action).WithField("via", via)
	rep := slapos.AgentReport{Action: action, Via: via}
	var err error
	var st Status
	switch action {
	case slapos.WatchConfigChange:
		var b []byte
		if b, err = a.c.bundle(ctx); err == nil {
			var changed bool
			if changed, err = a.installBundle(b); err == nil {
				if changed {
					log.Info("new configuration installed: it takes effect at the next restart")
					rep.Result, rep.Detail = "done", "takes effect at the next restart"
				} else {
					log.Info("configuration unchanged")
					rep.Result = "unchanged"
				}
				a.rep.send(rep)
				return
			}
		}
	case slapos.WatchStop:
		st, err = a.sup.ask(ctx, "stop", "the manager asked ("+via+")")
	case slapos.WatchRestart:
		st, err = a.sup.ask(ctx, "restart", "the manager asked ("+via+")")
	case slapos.WatchStart:
		st, err = a.sup.ask(ctx, "start", "the manager asked ("+via+")")
	default:
		log.Warn("unknown action: ignored")
		return
	}
	rep.Result, rep.Error = outcome(err)
	rep.Detail = pidDetail(st)
	a.rep.send(rep)
	if err != nil {
		log.WithError(err).Error("action failed")
		return
	}
	log.Info("done")
}

// poll asks the legacy need-* routes once, as SlapOS' scripts do every minute.
func (a *Agent) poll(ctx context.Context) {
	type q struct {
		route, action string
		edge          bool
	}
	for _, r := range []q{
		{slapos.ActionNeedConfigChange, slapos.WatchConfigChange, false},
		{slapos.ActionNeedStop, slapos.WatchStop, false},
		{slapos.ActionNeedRestart, slapos.WatchRestart, true},
		{slapos.ActionNeedStart, slapos.WatchStart, false},
	} {
		yes, err := a.c.need(ctx, r.route)
		if err != nil {
			if ctx.Err() == nil {
				a.managerDown(err)
			}
			return
		}
		a.managerUp()
		if r.edge {
			// need-restart is not consumed: act when it turns on, not on every poll.
			was := a.restartOn
			a.restartOn = yes
			if !yes || was {
				continue
			}
		} else if !yes {
			continue
		}
		a.act(ctx, r.action, r.route)
	}
}

// managerDown records a failed call: one log line when the manager becomes unreachable,
// then silence, with a backoff of 1 s doubling up to 30 s. The service is not touched.
func (a *Agent) managerDown(err error) {
	if a.down.IsZero() {
		a.down = time.Now()
		a.backoff = time.Second
		msg := "manager unreachable: retrying with backoff (up to 30s); " + a.sup.name() + " is left as it is"
		if errors.Is(err, errUnauthorized) {
			msg = "the manager refuses this partition's credential: retrying with backoff (up to 30s)"
		}
		a.log.WithError(err).Warn(msg)
		return
	}
	a.backoff *= 2
	if a.backoff > 30*time.Second {
		a.backoff = 30 * time.Second
	}
}

func (a *Agent) managerUp() {
	if !a.down.IsZero() {
		a.log.WithField("after", time.Since(a.down).Round(time.Second).String()).Info("manager reachable again")
		a.down = time.Time{}
		a.backoff = 0
	}
}

// Status asks the supervisor for the service's status.
func (a *Agent) Status(ctx context.Context) (Status, error) { return a.sup.ask(ctx, "status", "") }

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
