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
	return errors.Join(errs...)
}

// Reconcile reads runtime_mysql_servers (one statement) and, when it contradicts the
// snapshot (see Contradictions), rewrites the rows of mysql_servers that differ and loads
// them. A snapshot without a master changes nothing. Users are synced when due.
func (r *Router) Reconcile(ctx context.Context, s *topology.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.opt.Manage {
		if err := r.syncServers(ctx, s, false, false); err != nil {
			errs = append(errs, err)
		}
	}
	if r.opt.SyncUsers {
		m, ok := s.MasterServer()
		if ok && (normAddr(m.Addr) != r.lastSyncedOn || r.now().Sub(r.lastSync) >= r.opt.UserSyncInterval) {
			if err := r.syncUsers(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
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
func (r *Router) Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	current, err := r.admin.Servers(ctx)
	if err != nil {
		return fmt.Errorf("failover to %s: %w", newMaster, err)
	}
	desired := failoverRows(current, normAddr(oldMaster), normAddr(newMaster), r.opt.Hostgroups, r.opt.Rows, r.intentOptions())
	del, put := rowDiff(current, desired, r.opt.Hostgroups)
	if err := r.apply(ctx, del, put); err != nil {
		return fmt.Errorf("failover to %s: %w", newMaster, err)
	}
	if err := r.loadServers(ctx); err != nil {
		return fmt.Errorf("failover to %s: %w", newMaster, err)
	}
	r.log.WithFields(logrus.Fields{"old_master": oldMaster.String(), "new_master": newMaster.String()}).Info("proxysql writer moved")
	return nil
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
