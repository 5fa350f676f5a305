// Package local is the `local` orchestrator: a cluster's databases run as child processes
// of this machine (internal/dbproc).
package local

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// Name is the prov-orchestrator value of the local orchestrator.
const Name = "local"

// shared is the one local orchestrator of the process: it owns the mariadbd it started, so
// every lookup in the registry must return the same table.
var shared = &Orchestrator{procs: map[string]*dbproc.Process{}}

func init() {
	orchestrator.Register(Name, func(orchestrator.Deps) (orchestrator.Orchestrator, error) { return shared, nil })
}

// Orchestrator runs a cluster's databases as child processes of this machine, each in
// <working dir>/<cluster>/<host>_<port> (data/, tmp/, error.log). Only loopback addresses
// can be served. Proxies are not managed yet.
type Orchestrator struct {
	mu    sync.Mutex
	procs map[string]*dbproc.Process // by node directory
}

var _ orchestrator.Orchestrator = (*Orchestrator)(nil)

func (o *Orchestrator) Name() string { return Name }

// Placement puts each database in its node directory.
func (o *Orchestrator) Placement(c *config.Cluster) (orchestrator.Placement, error) {
	p, err := orchestrator.Targets(c)
	if err != nil {
		return p, err
	}
	for i := range p.Databases {
		p.Databases[i].Partition = configurator.NodeDatadir(&c.Settings, c.Name, p.Databases[i].Addr)
	}
	return p, nil
}

func (o *Orchestrator) node(c *config.Cluster, db orchestrator.Target) (dbproc.DB, error) {
	ip, err := netip.ParseAddr(ipv6.Unbracket(db.Addr.Host))
	if (err != nil && db.Addr.Host != "localhost") || (err == nil && !ip.IsLoopback()) {
		return dbproc.DB{}, fmt.Errorf("cluster %s: %s is not on this machine (the local orchestrator serves loopback addresses)", c.Name, db.Addr)
	}
	id, err := configurator.ServerIDFromID(topology.ServerIDFor(db.Addr))
	if err != nil {
		return dbproc.DB{}, err
	}
	bind := []string{ipv6.Unbracket(db.Addr.Host)}
	if db.Addr.Host == "localhost" {
		bind = []string{"127.0.0.1", "::1"}
	}
	return dbproc.DB{Dir: configurator.NodeDatadir(&c.Settings, c.Name, db.Addr), Port: db.Addr.Port, Bind: bind,
		ServerID: int(id), Args: dbproc.SmallFootprint}, nil
}

// ProvisionDatabase creates the data directory with the cluster's accounts (root from
// db-servers-credential, replication from replication-credential) and starts the server.
func (o *Orchestrator) ProvisionDatabase(ctx context.Context, c *config.Cluster, db orchestrator.Target) error {
	d, err := o.node(c, db)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(d.DataDir(), "mysql")); err != nil {
		root, err := c.Settings.DBCredential()
		if err != nil {
			return fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
		}
		repl, err := c.Settings.ReplicationCredentials()
		if err != nil {
			return fmt.Errorf("cluster %s: replication-credential: %w", c.Name, err)
		}
		accounts := []dbproc.Account{
			{User: root.User, Host: "localhost", Password: root.Password, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
			{User: root.User, Host: "%", Password: root.Password, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
		}
		if repl.User != root.User {
			accounts = append(accounts, dbproc.Account{User: repl.User, Host: "%", Password: repl.Password,
				Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"})
		}
		if err := dbproc.Bootstrap(ctx, d.DataDir(), d.Args, accounts); err != nil {
			return fmt.Errorf("cluster %s: provision %s: %w", c.Name, db.Addr, err)
		}
	}
	return o.StartDatabase(ctx, c, db)
}

// UnprovisionDatabase stops the server and removes its directory.
func (o *Orchestrator) UnprovisionDatabase(ctx context.Context, c *config.Cluster, db orchestrator.Target) error {
	d, err := o.node(c, db)
	if err != nil {
		return err
	}
	o.mu.Lock()
	p := o.procs[d.Dir]
	delete(o.procs, d.Dir)
	o.mu.Unlock()
	if p != nil {
		p.Stop(30 * time.Second)
	}
	return os.RemoveAll(d.Dir)
}

// StartDatabase starts a provisioned server; it is a no-op when this process runs it already.
func (o *Orchestrator) StartDatabase(ctx context.Context, c *config.Cluster, db orchestrator.Target) error {
	d, err := o.node(c, db)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.procs[d.Dir]; p != nil && p.Running() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(d.DataDir(), "mysql")); err != nil {
		return fmt.Errorf("cluster %s: start %s: not provisioned (no %s)", c.Name, db.Addr, d.DataDir())
	}
	p, err := dbproc.Start(ctx, d)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	o.procs[d.Dir] = p
	return nil
}

// StopDatabase stops a server with SQL SHUTDOWN and waits for the process it owns to exit.
func (o *Orchestrator) StopDatabase(ctx context.Context, c *config.Cluster, db orchestrator.Target, snap *topology.Snapshot) error {
	d, err := o.node(c, db)
	if err != nil {
		return err
	}
	if err := orchestrator.SQLShutdown(ctx, c, db.Addr, snap); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	o.mu.Lock()
	p := o.procs[d.Dir]
	o.mu.Unlock()
	if p != nil {
		select {
		case <-p.Done():
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: stop %s: %w", c.Name, db.Addr, ctx.Err())
		}
	}
	return nil
}

func (o *Orchestrator) ProvisionProxy(context.Context, *config.Cluster, orchestrator.Target) error {
	return nil
}
func (o *Orchestrator) UnprovisionProxy(context.Context, *config.Cluster, orchestrator.Target) error {
	return nil
}
func (o *Orchestrator) StartProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return fmt.Errorf("cluster %s: start %s: %w", c.Name, p, orchestrator.ErrNotSupported)
}
func (o *Orchestrator) StopProxy(_ context.Context, c *config.Cluster, p orchestrator.Target) error {
	return fmt.Errorf("cluster %s: stop %s: %w", c.Name, p, orchestrator.ErrNotSupported)
}

// IsProvisioned is true when every database has its data directory.
func (o *Orchestrator) IsProvisioned(c *config.Cluster, _ *topology.Snapshot, _ orchestrator.ProxyUp) (bool, error) {
	p, err := o.Placement(c)
	if err != nil {
		return false, err
	}
	if len(p.Databases) == 0 {
		return false, nil
	}
	for _, db := range p.Databases {
		if _, err := os.Stat(filepath.Join(db.Partition, "data", "mysql")); err != nil {
			return false, nil
		}
	}
	return true, nil
}
