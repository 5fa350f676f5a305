package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/jobs"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/orchestrator/slapos"
)

// orchestrators keeps the orchestrator of each running cluster. The fleet's factory builds
// it once with the cluster's monitor (orchestrator.New validates the configuration then) and
// it is dropped when that monitor is released; a settings reload builds a new monitor and a
// new orchestrator, handed the previous one (the local orchestrator keeps its processes).
// Instances are found by monitor, so a member's Config, Monitor and orchestrator always come
// from one build. Safe for concurrent use.
type orchestrators struct {
	log *logrus.Logger

	mu        sync.RWMutex
	byMonitor map[*cluster.Monitor]builtOrchestrator
	latest    map[string]orchestrator.Orchestrator // newest instance by lower-case cluster name
	watches   map[*cluster.Monitor]*proxyWatch     // proxies.go
}

// builtOrchestrator is a cluster's orchestrator, or why it has none: a prov-orchestrator
// the configuration accepts but no backend implements (opensvc, kube).
type builtOrchestrator struct {
	o   orchestrator.Orchestrator
	err error
}

func newOrchestrators(log *logrus.Logger) *orchestrators {
	return &orchestrators{log: log, byMonitor: map[*cluster.Monitor]builtOrchestrator{}, latest: map[string]orchestrator.Orchestrator{},
		watches: map[*cluster.Monitor]*proxyWatch{}}
}

// build makes the orchestrator of the cluster monitored by m; release forgets it. An invalid
// configuration is an error naming the cluster and the key; an unimplemented
// prov-orchestrator is not (the cluster is monitored, its start and stop actions fail).
func (r *orchestrators) build(c *config.Cluster, m *cluster.Monitor) (release func(), err error) {
	key := strings.ToLower(c.Name)
	r.mu.RLock()
	prev := r.latest[key]
	r.mu.RUnlock()
	o, err := orchestrator.New(c, orchestrator.Deps{Log: r.log.WithField("cluster", c.Name), Previous: prev})
	switch {
	case errors.Is(err, orchestrator.ErrUnknownOrchestrator):
		r.log.WithField("cluster", c.Name).WithError(err).Warn("no orchestrator: starting, stopping and provisioning are unavailable")
	case err != nil:
		return nil, err
	}
	// The cluster's proxies are watched, and a failed one restarted through o.
	var w *proxyWatch
	place, perr := orchestrator.Targets(c)
	if o != nil {
		place, perr = o.Placement(), nil
	}
	if perr == nil && len(place.Proxies) > 0 {
		w = startProxyWatch(c, place, o, r.log.WithField("cluster", c.Name))
	}
	r.mu.Lock()
	r.byMonitor[m] = builtOrchestrator{o: o, err: err}
	if o != nil {
		r.latest[key] = o
	}
	if w != nil {
		r.watches[m] = w
	}
	r.mu.Unlock()
	return func() {
		if w != nil {
			w.stop()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.byMonitor, m)
		delete(r.watches, m)
		if o != nil && r.latest[key] == o {
			delete(r.latest, key)
		}
	}, nil
}

// watchOf returns the proxy watch of the cluster monitored by m (nil: no proxies).
func (r *orchestrators) watchOf(m *cluster.Monitor) *proxyWatch {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.watches[m]
}

// of returns a running cluster's orchestrator.
func (r *orchestrators) of(m *cluster.Member) (orchestrator.Orchestrator, error) {
	r.mu.RLock()
	b, ok := r.byMonitor[m.Monitor]
	r.mu.RUnlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("cluster %s: no orchestrator built", m.Name)
	case b.err != nil:
		return nil, b.err
	}
	return b.o, nil
}

// services starts and stops databases through each cluster's orchestrator (the API's server
// actions start and stop), and finds the SlapOS clusters for the partition agents' endpoints.
type services struct {
	fleet *cluster.Fleet
	orchs *orchestrators
}

func (s services) member(name string) (*cluster.Member, orchestrator.Orchestrator, error) {
	m, ok := s.fleet.Get(name)
	if !ok {
		return nil, nil, fmt.Errorf("cluster %s not found", name)
	}
	o, err := s.orchs.of(m)
	if err != nil {
		return nil, nil, err
	}
	return m, o, nil
}

func (s services) StartDatabase(ctx context.Context, name string, addr ipv6.HostPort) error {
	m, o, err := s.member(name)
	if err != nil {
		return err
	}
	return asJob(ctx, m, jobs.Start, addr, func(ctx context.Context) error { return o.StartDatabase(ctx, addr) })
}

func (s services) StopDatabase(ctx context.Context, name string, addr ipv6.HostPort) error {
	m, o, err := s.member(name)
	if err != nil {
		return err
	}
	return asJob(ctx, m, jobs.Stop, addr, func(ctx context.Context) error { return o.StopDatabase(ctx, addr, m.Monitor.Snapshot()) })
}

// RestartDatabase stops then starts a database, one job of kind restart.
func (s services) RestartDatabase(ctx context.Context, name string, addr ipv6.HostPort) error {
	m, o, err := s.member(name)
	if err != nil {
		return err
	}
	return asJob(ctx, m, jobs.Restart, addr, func(ctx context.Context) error {
		if err := o.StopDatabase(ctx, addr, m.Monitor.Snapshot()); err != nil {
			return err
		}
		return o.StartDatabase(ctx, addr)
	})
}

// asJob runs a start or stop as a job of the cluster's queue, when it has one, so that it
// shows with the backups and reseeds (API, CLI, UI), and waits for it; directly otherwise.
func asJob(ctx context.Context, m *cluster.Member, kind jobs.Kind, addr ipv6.HostPort, run func(context.Context) error) error {
	b := backupsOf(m.Monitor)
	if b == nil || b.queue == nil {
		return run(ctx)
	}
	var runErr error // the orchestrator's own error, for the API's mapping (not supported: 501)
	j, err := b.queue.Enqueue(addr.String(), kind, "api", func(ctx context.Context, _ jobs.Job) (jobs.Outcome, error) {
		if runErr = run(ctx); runErr != nil {
			return jobs.Outcome{}, runErr
		}
		return jobs.Outcome{Result: string(kind) + " done"}, nil
	})
	if err != nil {
		return err
	}
	done, err := b.queue.Wait(ctx, j.ID)
	if err != nil {
		return err
	}
	if done.State == jobs.Failed {
		if runErr != nil {
			return runErr
		}
		return errors.New(done.Error)
	}
	return nil
}

// SlapOSCluster is the slapos.ClusterSource of the agent endpoints: a running cluster whose
// orchestrator is slapos.
func (s services) SlapOSCluster(name string) (slapos.Cluster, bool) {
	m, o, err := s.member(name)
	if err != nil {
		return slapos.Cluster{}, false
	}
	so, ok := o.(*slapos.Orchestrator)
	if !ok {
		return slapos.Cluster{}, false
	}
	c := m.Config
	return slapos.Cluster{Orchestrator: so, Config: &c, Snapshot: m.Monitor.Snapshot()}, true
}

// provisioned computes a cluster's isProvision through its orchestrator; a cluster without
// one (a prov-orchestrator not implemented) counts as provisioned.
func (s services) provisioned(log *logrus.Logger) func(m *cluster.Member) bool {
	return func(m *cluster.Member) bool {
		o, err := s.orchs.of(m)
		if err != nil {
			return true
		}
		w := s.orchs.watchOf(m.Monitor)
		ok, err := o.IsProvisioned(m.Monitor.Snapshot(), func(t orchestrator.Target) bool { return w.up(t) })
		if err != nil {
			log.WithField("cluster", m.Name).WithError(err).Warn("isProvision")
			return false
		}
		return ok
	}
}
