// Package local is the `local` orchestrator: a cluster's databases run as child processes
// of this machine (internal/dbproc).
package local

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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

func init() {
	orchestrator.Register(Name, func(c *config.Cluster, d orchestrator.Deps) (orchestrator.Orchestrator, error) {
		return New(c, d)
	})
}

// Orchestrator runs one cluster's databases as child processes of this machine, each in
// <working dir>/<cluster>/<host>_<port> (data/, tmp/, error.log). Only loopback addresses
// (and localhost) can be served. Proxies are not managed yet.
type Orchestrator struct {
	placement orchestrator.Placement // databases with their node directories
	dbs       []dbproc.DB            // by database index
	root      config.Credential      // db-servers-credential, created at bootstrap
	repl      config.Credential      // replication-credential, created at bootstrap
	stop      orchestrator.SQLStop
	procs     *processes // shared with the instance this one replaced or is replaced by
}

// processes are the mariadbd this process started, by node directory. A settings reload
// builds a new Orchestrator that takes the table over: the processes outlive the instance.
type processes struct {
	mu sync.Mutex
	m  map[string]*dbproc.Process
}

var _ orchestrator.Orchestrator = (*Orchestrator)(nil)

// New builds the local orchestrator of a cluster. Every db-servers-hosts entry must be a
// loopback address or localhost; db-servers-credential and replication-credential must
// parse (they are the accounts a provisioned server gets). With d.Previous a local
// orchestrator (a settings reload), the processes it started are taken over.
func New(c *config.Cluster, d orchestrator.Deps) (*Orchestrator, error) {
	p, err := orchestrator.Targets(c)
	if err != nil {
		return nil, err
	}
	o := &Orchestrator{}
	for i := range p.Databases {
		db, err := node(c, p.Databases[i].Addr)
		if err != nil {
			return nil, fmt.Errorf("db-servers-hosts: %w", err)
		}
		p.Databases[i].Partition = db.Dir
		o.dbs = append(o.dbs, db)
	}
	o.placement = p
	if configurator.HasTag(c.Settings.ProvDBTags, "ssl") {
		// Tag ssl: the servers serve TLS with the cluster's certificates, the ones the
		// daemon puts in bundles, so that REQUIRE SSL accounts (tenants) can connect.
		if _, err := configurator.ClusterTLSFor(&c.Settings, c.Name); err != nil {
			return nil, fmt.Errorf("tag ssl: %w", err)
		}
		tlsArgs := configurator.ServerTLSArgs(configurator.ClusterTLSDir(&c.Settings, c.Name))
		for i := range o.dbs {
			o.dbs[i].Args = append(append([]string(nil), o.dbs[i].Args...), tlsArgs...)
		}
	}
	if o.root, err = c.Settings.DBCredential(); err != nil {
		return nil, fmt.Errorf("db-servers-credential: %w", err)
	}
	if o.repl, err = c.Settings.ReplicationCredentials(); err != nil {
		return nil, fmt.Errorf("replication-credential: %w", err)
	}
	if o.stop, err = orchestrator.SQLStopFrom(&c.Settings); err != nil {
		return nil, err
	}
	if prev, ok := d.Previous.(*Orchestrator); ok && prev != nil {
		o.procs = prev.procs
	} else {
		o.procs = &processes{m: map[string]*dbproc.Process{}}
	}
	return o, nil
}

// node is how a database at addr runs here.
func node(c *config.Cluster, addr ipv6.HostPort) (dbproc.DB, error) {
	host := ipv6.Unbracket(addr.Host)
	localhost := strings.EqualFold(host, "localhost")
	if ip, err := netip.ParseAddr(host); !localhost && (err != nil || !ip.IsLoopback()) {
		return dbproc.DB{}, fmt.Errorf("%s is not on this machine (the local orchestrator serves loopback addresses and localhost)", addr)
	}
	id, err := configurator.ServerIDFromID(topology.ServerIDFor(addr))
	if err != nil {
		return dbproc.DB{}, fmt.Errorf("%s: %w", addr, err)
	}
	bind := []string{host}
	if localhost {
		bind = []string{"127.0.0.1", "::1"}
	}
	return dbproc.DB{Dir: configurator.NodeDatadir(&c.Settings, c.Name, addr), Port: addr.Port, Bind: bind,
		ServerID: int(id), Args: dbproc.SmallFootprint}, nil
}

func (o *Orchestrator) Name() string { return Name }

// Placement puts each database in its node directory.
func (o *Orchestrator) Placement() orchestrator.Placement { return o.placement.Clone() }

func (o *Orchestrator) db(what string, addr ipv6.HostPort) (orchestrator.Target, dbproc.DB, error) {
	t, err := o.placement.Database(what, addr)
	if err != nil {
		return t, dbproc.DB{}, err
	}
	return t, o.dbs[t.Index], nil
}

func (o *Orchestrator) errorf(format string, a ...any) error {
	return fmt.Errorf("cluster %s: "+format, append([]any{o.placement.Cluster}, a...)...)
}

// ProvisionDatabase creates the data directory with the cluster's accounts (root from
// db-servers-credential, replication from replication-credential) and starts the server.
func (o *Orchestrator) ProvisionDatabase(ctx context.Context, addr ipv6.HostPort) error {
	t, d, err := o.db("provision", addr)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(d.DataDir(), "mysql")); err != nil {
		accounts := []dbproc.Account{
			{User: o.root.User, Host: "localhost", Password: o.root.Password, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
			{User: o.root.User, Host: "%", Password: o.root.Password, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
		}
		if o.repl.User != o.root.User {
			accounts = append(accounts, dbproc.Account{User: o.repl.User, Host: "%", Password: o.repl.Password,
				Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"})
		}
		if err := dbproc.Bootstrap(ctx, d.DataDir(), d.Args, accounts); err != nil {
			return o.errorf("provision %s: %w", t.Addr, err)
		}
	}
	return o.StartDatabase(ctx, t.Addr)
}

// UnprovisionDatabase stops the server and removes its directory.
func (o *Orchestrator) UnprovisionDatabase(_ context.Context, addr ipv6.HostPort) error {
	_, d, err := o.db("unprovision", addr)
	if err != nil {
		return err
	}
	o.procs.mu.Lock()
	p := o.procs.m[d.Dir]
	delete(o.procs.m, d.Dir)
	o.procs.mu.Unlock()
	if p != nil {
		p.Stop(30 * time.Second)
	}
	return os.RemoveAll(d.Dir)
}

// StartDatabase starts a provisioned server; it is a no-op when this process runs it already.
func (o *Orchestrator) StartDatabase(ctx context.Context, addr ipv6.HostPort) error {
	t, d, err := o.db("start", addr)
	if err != nil {
		return err
	}
	o.procs.mu.Lock()
	defer o.procs.mu.Unlock()
	if p := o.procs.m[d.Dir]; p != nil && p.Running() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(d.DataDir(), "mysql")); err != nil {
		return o.errorf("start %s: not provisioned (no %s)", t.Addr, d.DataDir())
	}
	p, err := dbproc.Start(ctx, d)
	if err != nil {
		return o.errorf("%w", err)
	}
	o.procs.m[d.Dir] = p
	return nil
}

// StopDatabase stops a server with SQL SHUTDOWN and waits for the process it owns to exit.
func (o *Orchestrator) StopDatabase(ctx context.Context, addr ipv6.HostPort, snap *topology.Snapshot) error {
	t, d, err := o.db("stop", addr)
	if err != nil {
		return err
	}
	if err := o.stop.Stop(ctx, t.Addr, snap); err != nil {
		return o.errorf("%w", err)
	}
	o.procs.mu.Lock()
	p := o.procs.m[d.Dir]
	o.procs.mu.Unlock()
	if p != nil {
		select {
		case <-p.Done():
		case <-ctx.Done():
			return o.errorf("stop %s: %w", t.Addr, ctx.Err())
		}
	}
	return nil
}

func (o *Orchestrator) ProvisionProxy(_ context.Context, p ipv6.HostPort) error {
	_, err := o.placement.Proxy("provision", p)
	return err
}

func (o *Orchestrator) UnprovisionProxy(_ context.Context, p ipv6.HostPort) error {
	_, err := o.placement.Proxy("unprovision", p)
	return err
}

func (o *Orchestrator) StartProxy(_ context.Context, p ipv6.HostPort) error {
	t, err := o.placement.Proxy("start", p)
	if err != nil {
		return err
	}
	return o.errorf("start %s: %w", t, orchestrator.ErrNotSupported)
}

func (o *Orchestrator) StopProxy(_ context.Context, p ipv6.HostPort) error {
	t, err := o.placement.Proxy("stop", p)
	if err != nil {
		return err
	}
	return o.errorf("stop %s: %w", t, orchestrator.ErrNotSupported)
}

// IsProvisioned is true when every database has its data directory.
func (o *Orchestrator) IsProvisioned(*topology.Snapshot, orchestrator.ProxyUp) (bool, error) {
	if len(o.dbs) == 0 {
		return false, nil
	}
	for _, d := range o.dbs {
		if _, err := os.Stat(filepath.Join(d.DataDir(), "mysql")); err != nil {
			return false, nil
		}
	}
	return true, nil
}
