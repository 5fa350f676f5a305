// Package slapos is the native SlapOS orchestrator. replication-manager cannot act inside
// another SlapOS partition: it publishes what it wants and each partition's agent (the cron
// scripts of SlapOS' repman software, or `replication-manager-pro slapos agent`) polls and
// acts. What it publishes is a configuration bundle per node and one-shot "cookies", files in
// the node's working directory that the need-* HTTP endpoints answer from.
//
// The package holds the orchestrator (placement, provisioning, start and stop by cookies,
// the isProvision flag), the HTTP handlers the API mounts, and the rendering of a SlapOS
// request (repman-cluster-dict) into replication-manager configuration files.
package slapos

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// Name is the prov-orchestrator value.
const Name = "slapos"

func init() {
	orchestrator.Register(Name, func(d orchestrator.Deps) (orchestrator.Orchestrator, error) {
		return New(Options{Log: d.Log}), nil
	})
}

// ShutdownFunc stops a database with SQL.
type ShutdownFunc func(ctx context.Context, c *config.Cluster, addr ipv6.HostPort, snap *topology.Snapshot) error

// Options tune the orchestrator; zero values take the defaults.
type Options struct {
	Log      logrus.FieldLogger
	Shutdown ShutdownFunc // default orchestrator.SQLShutdown
}

// Orchestrator drives SlapOS partitions through cookies.
type Orchestrator struct {
	log      logrus.FieldLogger
	shutdown ShutdownFunc
}

var _ orchestrator.Orchestrator = (*Orchestrator)(nil)

// New returns a SlapOS orchestrator.
func New(o Options) *Orchestrator {
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	if o.Shutdown == nil {
		o.Shutdown = orchestrator.SQLShutdown
	}
	return &Orchestrator{log: o.Log, shutdown: o.Shutdown}
}

// Name implements orchestrator.Orchestrator.
func (o *Orchestrator) Name() string { return Name }

// Placement implements orchestrator.Orchestrator with Place.
func (o *Orchestrator) Placement(c *config.Cluster) (orchestrator.Placement, error) { return Place(c) }

// cookies applies sets then deletes on a node's cookies, stopping at the first error.
func (o *Orchestrator) cookies(c *config.Cluster, t orchestrator.Target, what string, set []Cookie, del []Cookie) error {
	n, err := NodeOf(c, t.Addr)
	if err != nil {
		return fmt.Errorf("cluster %s: %s %s: %w", c.Name, what, t, err)
	}
	for _, k := range set {
		if err := n.Set(k); err != nil {
			return fmt.Errorf("cluster %s: %s %s: %w", c.Name, what, t, err)
		}
	}
	for _, k := range del {
		if err := n.Delete(k); err != nil {
			return fmt.Errorf("cluster %s: %s %s: %w", c.Name, what, t, err)
		}
	}
	o.log.WithFields(logrus.Fields{"cluster": c.Name, "server": t.Addr.String(), "step": what}).Debug("slapos cookies updated")
	return nil
}

// ProvisionDatabase publishes cookie_prov: the partition was requested with the instance,
// so provisioning succeeds at once; pending unprov, reprov and restart requests are void.
func (o *Orchestrator) ProvisionDatabase(_ context.Context, c *config.Cluster, db orchestrator.Target) error {
	return o.cookies(c, db, "provision", []Cookie{CookieProv}, []Cookie{CookieUnprov, CookieReprov, CookieRestart})
}

// UnprovisionDatabase publishes cookie_unprov for the partition's agent.
func (o *Orchestrator) UnprovisionDatabase(_ context.Context, c *config.Cluster, db orchestrator.Target) error {
	return o.cookies(c, db, "unprovision", []Cookie{CookieUnprov}, []Cookie{CookieProv, CookieReprov, CookieRestart})
}

// StartDatabase publishes cookie_waitstart, consumed by the partition's need-start poll.
func (o *Orchestrator) StartDatabase(_ context.Context, c *config.Cluster, db orchestrator.Target) error {
	return o.cookies(c, db, "start", []Cookie{CookieWaitStart}, nil)
}

// StopDatabase stops the database with SQL SHUTDOWN (WAIT FOR ALL SLAVES on a MariaDB 10.4+
// master): the partition's supervisor sees mariadbd exit and leaves it stopped.
func (o *Orchestrator) StopDatabase(ctx context.Context, c *config.Cluster, db orchestrator.Target, snap *topology.Snapshot) error {
	if err := o.shutdown(ctx, c, db.Addr, snap); err != nil {
		return fmt.Errorf("cluster %s: stop %s: %w", c.Name, db, err)
	}
	return nil
}

// ProvisionProxy publishes cookie_prov for the proxy and reports success (the original
// never reported, blocking the cluster's provisioning).
func (o *Orchestrator) ProvisionProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return o.cookies(c, p, "provision", []Cookie{CookieProv}, []Cookie{CookieUnprov, CookieReprov, CookieRestart})
}

// UnprovisionProxy publishes cookie_unprov for the proxy and reports success.
func (o *Orchestrator) UnprovisionProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return o.cookies(c, p, "unprovision", []Cookie{CookieUnprov}, []Cookie{CookieProv, CookieReprov, CookieRestart})
}

// StartProxy publishes cookie_waitstart for the proxy.
func (o *Orchestrator) StartProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return o.cookies(c, p, "start", []Cookie{CookieWaitStart}, nil)
}

// StopProxy publishes cookie_waitstop for the proxy.
func (o *Orchestrator) StopProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return o.cookies(c, p, "stop", []Cookie{CookieWaitStop}, nil)
}

// IsProvisioned computes isProvision as replication-manager does: false without databases;
// then for each database and each proxy in turn, a node without cookie_prov gets it when it
// runs (a database neither Failed, Suspect nor ErrorAuth in snap; a proxy by proxyUp),
// otherwise the answer is false; true when every node has the cookie.
func (o *Orchestrator) IsProvisioned(c *config.Cluster, snap *topology.Snapshot, proxyUp orchestrator.ProxyUp) (bool, error) {
	p, err := Place(c)
	if err != nil {
		return false, err
	}
	if len(p.Databases) == 0 {
		return false, nil
	}
	check := func(t orchestrator.Target, running bool) (bool, error) {
		n, err := NodeOf(c, t.Addr)
		if err != nil {
			return false, fmt.Errorf("cluster %s: %s: %w", c.Name, t, err)
		}
		if n.Has(CookieProv) {
			return true, nil
		}
		if !running {
			return false, nil
		}
		if err := n.Set(CookieProv); err != nil {
			return false, fmt.Errorf("cluster %s: %s: %w", c.Name, t, err)
		}
		return true, nil
	}
	for _, db := range p.Databases {
		if ok, err := check(db, orchestrator.DatabaseRunning(snap, db.Addr)); !ok || err != nil {
			return false, err
		}
	}
	for _, px := range p.Proxies {
		if ok, err := check(px, proxyUp.Up(px)); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}
