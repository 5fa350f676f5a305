package proxysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// Options configure one Router (one ProxySQL).
type Options struct {
	Cluster    string
	Admin      AdminConfig
	Hostgroups Hostgroups
	Rows       RowDefaults
	Read       ReadPolicy

	// Manage (proxysql-bootstrap) lets Bootstrap and Reconcile write mysql_servers. Without
	// it the Router only acts on Failover and Maintenance, as replication-manager does.
	Manage bool
	// BootstrapHostgroups (proxysql-bootstrap-hostgroups) writes the writer/reader pair
	// into mysql_replication_hostgroups at Bootstrap.
	BootstrapHostgroups bool
	// SyncUsers (proxysql-bootstrap-users) copies the master's accounts into mysql_users;
	// it needs Accounts.
	SyncUsers bool
	Accounts  AccountSource
	// UserSyncInterval spaces user syncs in Reconcile; they also run at Bootstrap and
	// whenever the master changes. Default one minute.
	UserSyncInterval time.Duration
	// SaveToDisk (proxysql-save-to-disk) follows every LOAD with the matching SAVE.
	SaveToDisk bool
	// FailoverBudget bounds Failover: within it a refused or failing admin interface is
	// retried at once; past it the move is left pending, retried by every Reconcile (every
	// monitoring tick), so that the executor's later steps are not held up. Default 2 s.
	FailoverBudget time.Duration
	// PingTimeout bounds the ping that starts every Reconcile: a hung admin interface
	// (connections accepted, nothing answered) then costs the monitor's tick this much,
	// not a whole call timeout. Default 500 ms.
	PingTimeout time.Duration

	Log *logrus.Entry
}

// Router is the router.Router of one ProxySQL. Its methods are serialised: the monitor's
// Reconcile and the executor's Failover never interleave their statements.
type Router struct {
	opt   Options
	admin *Admin
	log   *logrus.Entry

	mu           sync.Mutex
	lastSync     time.Time
	lastSyncedOn ipv6.HostPort
	maint        map[ipv6.HostPort]bool // operator maintenance (Maintenance), by unbracketed address
	now          func() time.Time

	// pending is a Failover that could not be applied yet; applied the last one applied
	// (re-applied after a ProxySQL restart when Manage is off).
	pending, applied *writerMove
	// synced: a Bootstrap or Reconcile completed; conns was the admin client's connection
	// count then. A new connection since means ProxySQL may have restarted from its disk
	// or its cnf: the next Reconcile re-applies everything at once.
	synced bool
	conns  uint64
}

// writerMove is one Failover: the writer moves from old to new.
type writerMove struct {
	old, new ipv6.HostPort
	since    time.Time
	attempts int
}

var _ router.Router = (*Router)(nil)

// New prepares a Router; it does not connect.
func New(opt Options) (*Router, error) {
	a, err := OpenAdmin(opt.Admin)
	if err != nil {
		return nil, err
	}
	if opt.UserSyncInterval <= 0 {
		opt.UserSyncInterval = time.Minute
	}
	if opt.FailoverBudget <= 0 {
		opt.FailoverBudget = 2 * time.Second
	}
	if opt.PingTimeout <= 0 {
		opt.PingTimeout = 500 * time.Millisecond
	}
	h := opt.Hostgroups
	if h.Writer == h.Reader || h.Offline == h.Writer || h.Offline == h.Reader {
		a.Close()
		return nil, fmt.Errorf("proxysql %s: hostgroups writer %d, reader %d, offline %d must differ", opt.Admin.Addr, h.Writer, h.Reader, h.Offline)
	}
	log := opt.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	log = log.WithFields(logrus.Fields{"cluster": opt.Cluster, "router": "proxysql " + opt.Admin.Addr.String()})
	return &Router{opt: opt, admin: a, log: log, maint: map[ipv6.HostPort]bool{}, now: time.Now}, nil
}

// intentOptions are the router.IntentFor options: the configured read policy and lag
// bound, and the servers in operator maintenance. Call with mu held.
func (r *Router) intentOptions() router.IntentOptions {
	var maint []ipv6.HostPort
	for a := range r.maint {
		maint = append(maint, a)
	}
	return r.opt.Read.IntentOptions(r.opt.Rows.MaxReplicationLag, maint)
}

// Name is "proxysql <admin address>".
func (r *Router) Name() string { return "proxysql " + r.opt.Admin.Addr.String() }

// Admin returns the router's admin client.
func (r *Router) Admin() *Admin { return r.admin }

// Close releases the admin connection.
func (r *Router) Close() error { return r.admin.Close() }

// Bootstrap writes the replication hostgroups (BootstrapHostgroups), makes mysql_servers
// exactly what the snapshot calls for (Manage) and syncs users (SyncUsers). Each part
// writes only what differs; LOAD and SAVE follow only a change, or a runtime that
// contradicts the snapshot.
func (r *Router) Bootstrap(ctx context.Context, s *topology.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	changed := false
	if r.opt.BootstrapHostgroups {
		c, err := r.ensureReplicationHostgroups(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		changed = changed || c
	}
	if r.opt.Manage {
		if err := r.syncServers(ctx, s, true, changed); err != nil {
			errs = append(errs, err)
		}
	} else if changed {
		if err := r.loadServers(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if r.opt.SyncUsers {
		if err := r.syncUsers(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		r.synced, r.conns = true, r.admin.Connections()
	}
	return errors.Join(errs...)
}

// Reconcile first pings the admin interface. When the Router had to open a new
// connection since its last complete sync (ProxySQL restarted, from a stale disk or its
// cnf), everything is re-applied at once: the hostgroup pair, mysql_servers (compared in
// full with Manage, or the last Failover again without it) and the users. A Failover left
// pending is retried. Then, with Manage, it reads runtime_mysql_servers (one statement)
// and, when it contradicts the snapshot (see Contradictions), rewrites the rows of
// mysql_servers that differ and loads them. A snapshot without a master changes no server.
// Users are synced when due.
func (r *Router) Reconcile(ctx context.Context, s *topology.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, r.opt.PingTimeout)
	err := r.admin.Ping(pctx)
	cancel()
	if err != nil {
		if r.pending != nil {
			return fmt.Errorf("%w; failover to %s still pending, retried every tick", err, r.pending.new)
		}
		return err
	}
	reconnected := r.synced && r.admin.Connections() != r.conns
	if reconnected {
		r.log.Warn("new connection to the proxysql admin interface (restarted?): re-applying hostgroups, servers and users now")
	}
	var errs []error
	if r.pending != nil {
		if err := r.retryPending(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	load := false
	if reconnected && r.opt.BootstrapHostgroups {
		c, err := r.ensureReplicationHostgroups(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		load = c
	}
	if reconnected && !r.opt.Manage && r.applied != nil && r.pending == nil {
		if err := r.moveWriter(ctx, r.applied.old, r.applied.new); err != nil {
			errs = append(errs, fmt.Errorf("re-apply failover to %s: %w", r.applied.new, err))
		}
		load = false // moveWriter loaded
	}
	if r.opt.Manage {
		if err := r.syncServers(ctx, s, reconnected, load); err != nil {
			errs = append(errs, err)
		}
	} else if load {
		if err := r.loadServers(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if r.opt.SyncUsers {
		m, ok := s.MasterServer()
		if ok && (reconnected || normAddr(m.Addr) != r.lastSyncedOn || r.now().Sub(r.lastSync) >= r.opt.UserSyncInterval) {
			if err := r.syncUsers(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		r.synced, r.conns = true, r.admin.Connections()
	}
	return errors.Join(errs...)
}

// syncServers brings mysql_servers in line with the snapshot's routing intent
// (router.IntentFor). With full (Bootstrap) the configuration table is compared even when
// the runtime agrees; force loads in any case.
func (r *Router) syncServers(ctx context.Context, s *topology.Snapshot, full, force bool) error {
	in := router.IntentFor(s, r.intentOptions())
	desired, ok := Desired(in, r.opt.Hostgroups, r.opt.Rows)
	if !ok {
		r.log.Debug("no master in the snapshot: routing left as is")
		if force {
			return r.loadServers(ctx)
		}
		return nil
	}
	runtime, err := r.admin.RuntimeServers(ctx)
	if err != nil {
		return err
	}
	why := Contradictions(s, in, runtime, desired, r.opt.Hostgroups, false)
	if len(why) > 0 {
		// Ask whether ProxySQL's monitor owns the pair before deciding it must be fought.
		monitor, err := r.monitorActive(ctx)
		if err != nil {
			return err
		}
		if monitor {
			why = Contradictions(s, in, runtime, desired, r.opt.Hostgroups, true)
		}
	}
	if len(why) == 0 && !full && !force {
		return nil
	}
	current, err := r.admin.Servers(ctx)
	if err != nil {
		return err
	}
	del, put := rowDiff(current, desired, r.opt.Hostgroups)
	if len(why) == 0 && len(del) == 0 && len(put) == 0 && !force {
		return nil
	}
	if len(why) > 0 {
		r.log.WithField("reasons", strings.Join(why, "; ")).Info("proxysql routing contradicts the topology: correcting")
	}
	if err := r.apply(ctx, del, put); err != nil {
		return err
	}
	return r.loadServers(ctx)
}

// monitorActive reports whether the writer/reader pair is in
// runtime_mysql_replication_hostgroups, i.e. whether ProxySQL moves servers by read_only.
func (r *Router) monitorActive(ctx context.Context) (bool, error) {
	hgs, err := r.admin.RuntimeReplicationHostgroups(ctx)
	if err != nil {
		return false, err
	}
	for _, h := range hgs {
		if h.Writer == r.opt.Hostgroups.Writer && h.Reader == r.opt.Hostgroups.Reader {
			return true, nil
		}
	}
	return false, nil
}

func (r *Router) apply(ctx context.Context, del, put []ServerRow) error {
	for _, d := range del {
		if err := r.admin.DeleteServer(ctx, d.Hostgroup, d.Addr()); err != nil {
			return err
		}
	}
	for _, p := range put {
		if err := r.admin.ReplaceServer(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) loadServers(ctx context.Context) error {
	if err := r.admin.LoadServersToRuntime(ctx); err != nil {
		return err
	}
	if r.opt.SaveToDisk {
		return r.admin.SaveServersToDisk(ctx)
	}
	return nil
}

func (r *Router) ensureReplicationHostgroups(ctx context.Context) (bool, error) {
	want := ReplicationHostgroup{Writer: r.opt.Hostgroups.Writer, Reader: r.opt.Hostgroups.Reader, Comment: r.opt.Cluster}
	have, err := r.admin.ReplicationHostgroups(ctx)
	if err != nil {
		return false, err
	}
	for _, h := range have {
		if h == want {
			return false, nil
		}
	}
	return true, r.admin.ReplaceReplicationHostgroup(ctx, want)
}

// Failover takes oldMaster out of the writer hostgroup (into the offline hostgroup: if it
// comes back writable, ProxySQL's monitor must not make it a writer again; Reconcile moves
// it to the readers once it replicates from the new master), and makes newMaster the only
// writer. The new master leaves the reader hostgroup unless reads go to the master
// (router.IntentOptions.WriterTakesReads, counting the ONLINE readers left). Other
// replicas keep their rows. It reads the configuration, not a snapshot, so it works on
// any tick.
//
// A failing admin interface (refused, slow, an error) is retried within FailoverBudget;
// after it the move is left pending and the error says so: every Reconcile retries it
// until it is applied (a later Failover replaces it).
func (r *Router) Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	mv := &writerMove{old: oldMaster, new: newMaster, since: r.now()}
	r.pending = nil
	fctx, cancel := context.WithTimeout(ctx, r.opt.FailoverBudget)
	defer cancel()
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		mv.attempts++
		if err = r.moveWriter(fctx, oldMaster, newMaster); err == nil {
			break
		}
		if wait > 400*time.Millisecond {
			wait = 400 * time.Millisecond
		}
		r.log.WithError(err).WithField("attempt", mv.attempts).Warn("proxysql failover attempt failed: retrying")
		select {
		case <-fctx.Done():
		case <-time.After(wait):
		}
		if fctx.Err() != nil {
			break
		}
	}
	fields := logrus.Fields{"old_master": oldMaster.String(), "new_master": newMaster.String(), "attempts": mv.attempts}
	if err != nil {
		r.pending = mv
		r.log.WithFields(fields).WithError(err).Error("proxysql writer not moved: left pending, retried on every monitoring tick")
		return fmt.Errorf("failover to %s: %w (%d attempts within %v; left pending, retried on every monitoring tick)", newMaster, err, mv.attempts, r.opt.FailoverBudget)
	}
	r.applied = mv
	r.log.WithFields(fields).Info("proxysql writer moved")
	return nil
}

// retryPending makes one more attempt at the pending Failover.
func (r *Router) retryPending(ctx context.Context) error {
	mv := r.pending
	mv.attempts++
	if err := r.moveWriter(ctx, mv.old, mv.new); err != nil {
		return fmt.Errorf("failover to %s still pending, retried every tick: %w", mv.new, err)
	}
	r.pending, r.applied = nil, mv
	r.log.WithFields(logrus.Fields{"old_master": mv.old.String(), "new_master": mv.new.String(), "attempts": mv.attempts,
		"pending_for": r.now().Sub(mv.since).Round(time.Millisecond).String()}).Info("proxysql writer moved on retry")
	return nil
}

// moveWriter applies one Failover: rows from the configuration, written and loaded.
func (r *Router) moveWriter(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	current, err := r.admin.Servers(ctx)
	if err != nil {
		return err
	}
	desired := failoverRows(current, normAddr(oldMaster), normAddr(newMaster), r.opt.Hostgroups, r.opt.Rows, r.intentOptions())
	del, put := rowDiff(current, desired, r.opt.Hostgroups)
	if err := r.apply(ctx, del, put); err != nil {
		return err
	}
	return r.loadServers(ctx)
}

// failoverRows computes the owned rows after a failover from the current configuration.
func failoverRows(current []ServerRow, oldM, newM ipv6.HostPort, hg Hostgroups, d RowDefaults, opt router.IntentOptions) []ServerRow {
	var out []ServerRow
	readers := 0
	var newReader *ServerRow
	for _, c := range current {
		if !hg.owns(c.Hostgroup) {
			continue
		}
		a := normAddr(c.Addr())
		switch {
		case a == oldM || a == newM:
			if a == newM && c.Hostgroup == hg.Reader {
				cc := c
				newReader = &cc
			}
		case c.Hostgroup == hg.Writer:
			// nobody else writes
		default:
			out = append(out, c)
			if c.Hostgroup == hg.Reader && c.Status == StatusOnline {
				readers++
			}
		}
	}
	out = append(out, newRow(hg.Writer, newM, StatusOnline, d, false))
	if opt.WriterTakesReads(readers) {
		if newReader != nil {
			nr := *newReader
			nr.Status = StatusOnline
			out = append(out, nr)
		} else {
			out = append(out, newRow(hg.Reader, newM, StatusOnline, d, true))
		}
	}
	if oldM != newM {
		out = append(out, newRow(hg.Offline, oldM, StatusOfflineSoft, d, false))
	}
	sortRows(out)
	return out
}

// Maintenance sets the server's writer and reader rows OFFLINE_SOFT (on: router.Drained)
// or ONLINE (off), and loads them; nothing is written when the rows already have that
// status. The server stays drained, whatever the snapshots say, until off.
func (r *Router) Maintenance(ctx context.Context, server ipv6.HostPort, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := StatusOnline
	if on {
		want = StatusOfflineSoft
		r.maint[normAddr(server)] = true
	} else {
		delete(r.maint, normAddr(server))
	}
	current, err := r.admin.Servers(ctx)
	if err != nil {
		return fmt.Errorf("maintenance of %s: %w", server, err)
	}
	addr := normAddr(server)
	var hgs []int
	found := false
	for _, c := range current {
		if normAddr(c.Addr()) != addr || (c.Hostgroup != r.opt.Hostgroups.Writer && c.Hostgroup != r.opt.Hostgroups.Reader) {
			continue
		}
		found = true
		if c.Status != want {
			hgs = append(hgs, c.Hostgroup)
		}
	}
	if !found {
		r.log.WithField("server", server.String()).Warn("maintenance: server in neither the writer nor the reader hostgroup")
		return nil
	}
	if len(hgs) == 0 {
		return nil
	}
	if err := r.admin.SetServerStatus(ctx, server, hgs, want); err != nil {
		return fmt.Errorf("maintenance of %s: %w", server, err)
	}
	if err := r.loadServers(ctx); err != nil {
		return fmt.Errorf("maintenance of %s: %w", server, err)
	}
	return nil
}
