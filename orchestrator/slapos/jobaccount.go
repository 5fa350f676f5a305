package slapos

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// JobAccountServer is what the job account keeper needs of a database (a *mariadb.Server).
type JobAccountServer interface {
	EnsureJobAccount(ctx context.Context, user, host, password string, grants []string) error
	Close() error
}

// JobAccountConfig says where the job account is kept.
type JobAccountConfig struct {
	Cluster string
	// WorkDir holds the partition key the password derives from (WorkingDir).
	WorkDir string
	// Interval is how often the databases are looked at (monitoring-ticker).
	Interval time.Duration
	// Snapshot is the monitor's latest view of the databases.
	Snapshot func() *topology.Snapshot
	// Paused is true while the keeper must not touch the servers: an action runs, or
	// another manager leads the cluster.
	Paused func() bool
	// Open connects to a database with the manager's account.
	Open func(ipv6.HostPort) (JobAccountServer, error)
	// Retry is the wait before a server whose account failed is tried again (30 s).
	Retry time.Duration
	Log   logrus.FieldLogger
}

// JobAccountKeeper keeps the job account (configurator.JobUser@JobHost, password
// JobPassword) on every reachable database of a cluster whose anonymous bundles carry it in
// place of the manager's credential (slapos-legacy-anonymous-routes): SlapOS's dbjobs
// script logs in with it, and nothing else creates it. A server is done once per
// appearance: when it was unreachable, it may come back with a new data directory. Stop
// ends its goroutine.
type JobAccountKeeper struct {
	cfg    JobAccountConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	ready map[ipv6.HostPort]bool
}

// StartJobAccount starts keeping the job account of a cluster.
func StartJobAccount(cfg JobAccountConfig) *JobAccountKeeper {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &JobAccountKeeper{cfg: cfg, cancel: cancel, done: make(chan struct{}), ready: map[ipv6.HostPort]bool{}}
	go k.run(ctx)
	return k
}

// Stop ends the keeper.
func (k *JobAccountKeeper) Stop() {
	if k == nil {
		return
	}
	k.cancel()
	<-k.done
}

// Ready reports whether the account was made on a server since it last appeared.
func (k *JobAccountKeeper) Ready(addr ipv6.HostPort) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ready[addr]
}

func (k *JobAccountKeeper) run(ctx context.Context) {
	defer close(k.done)
	t := time.NewTicker(k.cfg.Interval)
	defer t.Stop()
	var password string
	retryAt := map[ipv6.HostPort]time.Time{}
	failed := map[ipv6.HostPort]string{} // the error last logged, so each is logged once
	keyErr := ""
	for {
		if password == "" {
			key, err := LoadOrCreatePartitionKey(k.cfg.WorkDir)
			switch {
			case err != nil && err.Error() != keyErr:
				keyErr = err.Error()
				k.cfg.Log.WithError(err).Error("slapos: job account: no partition key; jobs of anonymous bundles cannot log in")
			case err == nil:
				password = JobPassword(key, k.cfg.Cluster)
			}
		}
		if password != "" {
			k.pass(ctx, password, retryAt, failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass makes the account on each reachable server that lacks it.
func (k *JobAccountKeeper) pass(ctx context.Context, password string, retryAt map[ipv6.HostPort]time.Time, failed map[ipv6.HostPort]string) {
	snap := k.cfg.Snapshot()
	if snap == nil || (k.cfg.Paused != nil && k.cfg.Paused()) {
		return
	}
	for i := range snap.Servers {
		s := &snap.Servers[i]
		if !s.Reachable {
			k.mu.Lock()
			delete(k.ready, s.Addr)
			k.mu.Unlock()
			continue
		}
		if k.Ready(s.Addr) || time.Now().Before(retryAt[s.Addr]) {
			continue
		}
		err := k.ensure(ctx, s.Addr, password)
		log := k.cfg.Log.WithFields(logrus.Fields{"server": s.Addr.String(), "account": configurator.JobUser + "@" + configurator.JobHost})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			retryAt[s.Addr] = time.Now().Add(k.cfg.Retry)
			if failed[s.Addr] != err.Error() {
				failed[s.Addr] = err.Error()
				log.WithError(err).Warn("slapos: job account not made; the partition's jobs cannot log in")
			}
			continue
		}
		if _, was := failed[s.Addr]; was {
			log.Info("slapos: job account made")
		} else {
			log.Debug("slapos: job account made")
		}
		delete(failed, s.Addr)
		delete(retryAt, s.Addr)
		k.mu.Lock()
		k.ready[s.Addr] = true
		k.mu.Unlock()
	}
}

func (k *JobAccountKeeper) ensure(ctx context.Context, addr ipv6.HostPort, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := k.cfg.Open(addr)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.EnsureJobAccount(ctx, configurator.JobUser, configurator.JobHost, password, configurator.JobGrants)
}
