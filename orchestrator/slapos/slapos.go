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
	orchestrator.Register(Name, func(c *config.Cluster, d orchestrator.Deps) (orchestrator.Orchestrator, error) {
		return New(c, Options{Log: d.Log})
	})
}

// ShutdownFunc stops a database with SQL; snap (may be nil) tells whether it is the master
// and its version.
type ShutdownFunc = orchestrator.StopFunc

// Options tune the orchestrator; zero values take the defaults.
type Options struct {
	Log logrus.FieldLogger
	// Shutdown stops a database; default: SQL with the cluster's db-servers-credential
	// (orchestrator.SQLStop).
	Shutdown ShutdownFunc
}

// Orchestrator drives one cluster's SlapOS partitions through cookies: each node's cookies
// are files in <working dir>/<cluster>/<Host>_<Port>.
type Orchestrator struct {
	placement orchestrator.Placement
	workDir   string
	log       logrus.FieldLogger
	shutdown  ShutdownFunc
}

var _ orchestrator.Orchestrator = (*Orchestrator)(nil)

// New builds the SlapOS orchestrator of a cluster. It checks the configuration once: the
// node lists and their partitions (Place), a working directory (monitoring-datadir or
// monitoring-basedir) and a cluster name that can name the node directories, and, unless
// o.Shutdown is given, db-servers-credential.
func New(c *config.Cluster, o Options) (*Orchestrator, error) {
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	p, err := Place(c)
	if err != nil {
		return nil, err
	}
	if o.Shutdown == nil {
		stop, err := orchestrator.SQLStopFrom(&c.Settings)
		if err != nil {
			return nil, err
		}
		o.Shutdown = stop.Stop
	}
	orch := &Orchestrator{placement: p, workDir: WorkingDir(&c.Settings), log: o.Log, shutdown: o.Shutdown}
	if orch.workDir == "" {
		return nil, fmt.Errorf("monitoring-datadir: empty: the node directories (cookies) live under it")
	}
	for _, l := range [][]orchestrator.Target{p.Databases, p.Proxies} {
		for _, t := range l {
			if _, err := orch.Node(t.Addr); err != nil {
				return nil, err
			}
		}
	}
	return orch, nil
}

// Name implements orchestrator.Orchestrator.
func (o *Orchestrator) Name() string { return Name }

// Cluster is the cluster's name.
func (o *Orchestrator) Cluster() string { return o.placement.Cluster }

// Placement implements orchestrator.Orchestrator: the placement Place computed at build.
func (o *Orchestrator) Placement() orchestrator.Placement { return o.placement.Clone() }

// Find returns the node at addr (ipv6.SameAddr): databases first, then proxies (a ProxySQL
// by its admin port).
func (o *Orchestrator) Find(addr ipv6.HostPort) (orchestrator.Target, bool) {
	return o.placement.Find(addr)
}

// Node returns the working directory of the node at addr, which holds its cookies.
func (o *Orchestrator) Node(addr ipv6.HostPort) (Node, error) {
	return NodeIn(o.workDir, o.placement.Cluster, addr)
}

// EveryDatabaseHas reports whether every database of the cluster has the cookie (false
// without databases): the "needs rolling restart/reprov" flags.
func (o *Orchestrator) EveryDatabaseHas(ck Cookie) (bool, error) {
	if len(o.placement.Databases) == 0 {
		return false, nil
	}
	for _, db := range o.placement.Databases {
		n, err := o.Node(db.Addr)
		if err != nil {
			return false, err
		}
		if !n.Has(ck) {
			return false, nil
		}
	}
	return true, nil
}

// cookies applies sets then deletes on a node's cookies, stopping at the first error.
func (o *Orchestrator) cookies(t orchestrator.Target, what string, set []Cookie, del []Cookie) error {
	n, err := o.Node(t.Addr)
	if err != nil {
		return fmt.Errorf("cluster %s: %s %s: %w", o.Cluster(), what, t, err)
	}
	for _, k := range set {
		if err := n.Set(k); err != nil {
			return fmt.Errorf("cluster %s: %s %s: %w", o.Cluster(), what, t, err)
		}
	}
	for _, k := range del {
		if err := n.Delete(k); err != nil {
			return fmt.Errorf("cluster %s: %s %s: %w", o.Cluster(), what, t, err)
		}
	}
	o.log.WithFields(logrus.Fields{"cluster": o.Cluster(), "server": t.Addr.String(), "step": what}).Debug("slapos cookies updated")
	return nil
}

func (o *Orchestrator) database(what string, addr ipv6.HostPort, set, del []Cookie) error {
	t, err := o.placement.Database(what, addr)
	if err != nil {
		return err
	}
	return o.cookies(t, what, set, del)
}

func (o *Orchestrator) proxy(what string, addr ipv6.HostPort, set, del []Cookie) error {
	t, err := o.placement.Proxy(what, addr)
	if err != nil {
		return err
	}
	return o.cookies(t, what, set, del)
}

// ProvisionDatabase publishes cookie_prov: the partition was requested with the instance,
// so provisioning succeeds at once; pending unprov, reprov and restart requests are void.
func (o *Orchestrator) ProvisionDatabase(_ context.Context, db ipv6.HostPort) error {
	return o.database("provision", db, []Cookie{CookieProv}, []Cookie{CookieUnprov, CookieReprov, CookieRestart})
}

// UnprovisionDatabase publishes cookie_unprov for the partition's agent.
func (o *Orchestrator) UnprovisionDatabase(_ context.Context, db ipv6.HostPort) error {
	return o.database("unprovision", db, []Cookie{CookieUnprov}, []Cookie{CookieProv, CookieReprov, CookieRestart})
}

// StartDatabase publishes cookie_waitstart, consumed by the partition's need-start poll.
func (o *Orchestrator) StartDatabase(_ context.Context, db ipv6.HostPort) error {
	return o.database("start", db, []Cookie{CookieWaitStart}, nil)
}

// StopDatabase stops the database with SQL SHUTDOWN (WAIT FOR ALL SLAVES on a MariaDB 10.4+
// master): the partition's supervisor sees mariadbd exit and leaves it stopped.
func (o *Orchestrator) StopDatabase(ctx context.Context, db ipv6.HostPort, snap *topology.Snapshot) error {
	t, err := o.placement.Database("stop", db)
	if err != nil {
		return err
	}
	if err := o.shutdown(ctx, t.Addr, snap); err != nil {
		return fmt.Errorf("cluster %s: stop %s: %w", o.Cluster(), t, err)
	}
	return nil
}

// ProvisionProxy publishes cookie_prov for the proxy and reports success (the original
// never reported, blocking the cluster's provisioning).
func (o *Orchestrator) ProvisionProxy(_ context.Context, p ipv6.HostPort) error {
	return o.proxy("provision", p, []Cookie{CookieProv}, []Cookie{CookieUnprov, CookieReprov, CookieRestart})
}

// UnprovisionProxy publishes cookie_unprov for the proxy and reports success.
func (o *Orchestrator) UnprovisionProxy(_ context.Context, p ipv6.HostPort) error {
	return o.proxy("unprovision", p, []Cookie{CookieUnprov}, []Cookie{CookieProv, CookieReprov, CookieRestart})
}

// StartProxy publishes cookie_waitstart for the proxy.
func (o *Orchestrator) StartProxy(_ context.Context, p ipv6.HostPort) error {
	return o.proxy("start", p, []Cookie{CookieWaitStart}, nil)
}

// StopProxy publishes cookie_waitstop for the proxy.
func (o *Orchestrator) StopProxy(_ context.Context, p ipv6.HostPort) error {
	return o.proxy("stop", p, []Cookie{CookieWaitStop}, nil)
}

// IsProvisioned computes isProvision as replication-manager does: false without databases;
// then for each database and each proxy in turn, a node without cookie_prov gets it when it
// runs (a database neither Failed, Suspect nor ErrorAuth in snap; a proxy by proxyUp),
// otherwise the answer is false; true when every node has the cookie.
func (o *Orchestrator) IsProvisioned(snap *topology.Snapshot, proxyUp orchestrator.ProxyUp) (bool, error) {
	if len(o.placement.Databases) == 0 {
		return false, nil
	}
	check := func(t orchestrator.Target, running bool) (bool, error) {
		n, err := o.Node(t.Addr)
		if err != nil {
			return false, fmt.Errorf("cluster %s: %s: %w", o.Cluster(), t, err)
		}
		if n.Has(CookieProv) {
			return true, nil
		}
		if !running {
			return false, nil
		}
		if err := n.Set(CookieProv); err != nil {
			return false, fmt.Errorf("cluster %s: %s: %w", o.Cluster(), t, err)
		}
		return true, nil
	}
	for _, db := range o.placement.Databases {
		if ok, err := check(db, orchestrator.DatabaseRunning(snap, db.Addr)); !ok || err != nil {
			return false, err
		}
	}
	for _, px := range o.placement.Proxies {
		if ok, err := check(px, proxyUp.Up(px)); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}
