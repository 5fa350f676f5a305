package proxysql_test

// Helpers of the tests on a real ProxySQL (../shared/tools/proxysql, PROXYSQL_BIN or PATH)
// in front of real MariaDB servers (internal/testenv). They live in the external test
// package so that they may use package configurator (bundles, certificates), which imports
// proxysql.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/proxysql"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// Hostgroups of the tests: not ProxySQL's 0 and 1, so that a default taken by mistake shows.
var hg = proxysql.Hostgroups{Writer: 10, Reader: 20, Offline: proxysql.DefaultOfflineHostgroup}

const (
	appUser = "app"
	appPass = "app-pw"
)

// stack is a real MariaDB cluster behind a real ProxySQL, with a Router on its admin
// interface.
type stack struct {
	t      testing.TB
	c      *testenv.Cluster
	p      *testenv.ProxySQL
	params proxysql.ConfigParams
	r      *proxysql.Router
	opts   proxysql.Options
	admin  *sql.DB
}

type stackConfig struct {
	n        int
	tags     []string
	read     proxysql.ReadPolicy
	cnf      func(*proxysql.ConfigParams) // adjusts the cnf parameters
	render   func(*stack) []byte          // renders the cnf instead of GenerateConfig
	opts     func(*proxysql.Options)      // adjusts the Router's options
	dbArgs   []string                     // mariadbd options
	noRouter bool
}

// startStack starts n MariaDB servers (server 0 the master), creates the application's
// table and account on the master, starts ProxySQL on the cnf GenerateConfig renders for
// them (binding 127.0.0.1 and [::1]), and prepares a Router (not bootstrapped).
func startStack(t testing.TB, sc stackConfig) *stack {
	t.Helper()
	if sc.n == 0 {
		sc.n = 3
	}
	p := testenv.NewProxySQL(t) // skips (fails under CI) first when proxysql is missing
	var opts []testenv.Option
	if len(sc.dbArgs) > 0 {
		opts = append(opts, testenv.WithArgs(sc.dbArgs...))
	}
	c := testenv.StartCluster(t, sc.n, opts...)
	m := c.Master()
	m.Exec(t, "CREATE DATABASE IF NOT EXISTS rmp")
	m.Exec(t, "CREATE TABLE IF NOT EXISTS rmp.w (id BIGINT PRIMARY KEY, via VARCHAR(16), sid INT, at DATETIME(6)) ENGINE=InnoDB")
	m.Exec(t, "CREATE USER IF NOT EXISTS "+appUser+"@'%' IDENTIFIED BY '"+appPass+"'")
	m.Exec(t, "GRANT SELECT, INSERT, UPDATE ON rmp.* TO "+appUser+"@'%'")
	c.WaitSync(t)

	s := &stack{t: t, c: c, p: p}
	s.params = proxysql.ConfigParams{
		Datadir: p.Datadir, AdminUser: p.AdminUser, AdminPassword: p.AdminPassword,
		AdminPort: p.AdminPort, Port: p.Port, BindIPv4: "127.0.0.1", BindIPv6: "::1",
		MonitorUser: testenv.RootUser, MonitorPassword: testenv.RootPassword,
		Users:          []proxysql.User{{Username: testenv.RootUser, Password: testenv.RootPassword}},
		Hostgroups:     hg,
		Servers:        s.addrs(),
		Weight:         100,
		MaxConnections: 200, MaxReplicationLag: 30, Threads: 2,
		Tags: append([]string{proxysql.TagMasterSlave}, sc.tags...),
	}
	if sc.cnf != nil {
		sc.cnf(&s.params)
	}
	var cnf []byte
	if sc.render != nil {
		cnf = sc.render(s)
	} else {
		var err error
		if cnf, err = proxysql.GenerateConfig(s.params); err != nil {
			t.Fatal(err)
		}
	}
	p.Start(cnf)
	s.admin = p.AdminDB(t, false)
	s.opts = proxysql.Options{
		Cluster:             "c1",
		Admin:               proxysql.AdminConfig{Addr: ipv6.HostPort{Host: "::1", Port: p.AdminPort}, User: p.AdminUser, Password: p.AdminPassword, ConnectTimeout: time.Second, CallTimeout: 2 * time.Second},
		Hostgroups:          hg,
		Rows:                proxysql.RowDefaults{Weight: 100, MaxConnections: 200, MaxReplicationLag: 30, UseSSL: s.params.Tags != nil && hasTag(s.params.Tags, proxysql.TagSSL), Comment: "c1"},
		Read:                sc.read,
		Manage:              true,
		BootstrapHostgroups: true,
		SyncUsers:           true,
		Accounts:            proxysql.MariaDBAccounts(testenv.RootUser, testenv.RootPassword, 2*time.Second),
		Log:                 testLogger(t),
	}
	if sc.opts != nil {
		sc.opts(&s.opts)
	}
	if !sc.noRouter {
		s.r = s.newRouter()
	}
	return s
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

func (s *stack) newRouter() *proxysql.Router {
	r, err := proxysql.New(s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { r.Close() })
	return r
}

func (s *stack) addrs() []ipv6.HostPort {
	var out []ipv6.HostPort
	for _, srv := range s.c.Servers {
		out = append(out, addrOf(srv))
	}
	return out
}

func addrOf(srv *testenv.Server) ipv6.HostPort {
	return ipv6.HostPort{Host: srv.Host(), Port: srv.Port()}
}

// name gives the server index of an address ("s1"), for readable table dumps.
func (s *stack) name(host string, port int) string {
	for i, srv := range s.c.Servers {
		if srv.Port() == port && (host == srv.Host() || host == srv.Host6()) {
			return "s" + strconv.Itoa(i)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// rows dumps a servers table (mysql_servers, runtime_mysql_servers, disk.mysql_servers)
// as sorted "hg sN STATUS" lines.
func (s *stack) rows(table string) []string {
	s.t.Helper()
	out, err := s.tryRows(table)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *stack) tryRows(table string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rs, err := s.admin.QueryContext(ctx, "SELECT hostgroup_id, hostname, port, status FROM "+table)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var h, p int
		var host, st string
		if err := rs.Scan(&h, &host, &p, &st); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%d %s %s", h, s.name(host, p), st))
	}
	sort.Strings(out)
	return out, rs.Err()
}

// waitRows waits until a servers table shows exactly want (sorted "hg sN STATUS" lines).
func (s *stack) waitRows(table string, within time.Duration, want ...string) {
	s.t.Helper()
	sort.Strings(want)
	var got []string
	deadline := time.Now().Add(within)
	for {
		var err error
		got, err = s.tryRows(table)
		if err == nil && strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: got %q, want %q within %v (last error %v)", table, got, want, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) exec(stmt string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, stmt); err != nil {
		s.t.Fatalf("proxysql admin: %s: %v", stmt, err)
	}
}

func (s *stack) server(addr string) *testenv.Server {
	for _, srv := range s.c.Servers {
		if srv.Addr() == addr {
			return srv
		}
	}
	s.t.Fatalf("no server %s", addr)
	return nil
}

// monitor builds a cluster monitor (the values of haproxy's tests: 200 ms ticker, three
// missed probes) driving routers.
func (s *stack) monitor(mode string, routers ...router.Router) *cluster.Monitor {
	t := s.t
	t.Helper()
	events, err := eventlog.Open(filepath.Join(testenv.ShortTempDir(t), "events.jsonl"), 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	cfg := cluster.MonitorConfig{
		Cluster: "c1", Hosts: s.addrs(), Ticker: 200 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
		HeartbeatCheck: true, HeartbeatTimeout: time.Second, AutoRejoin: true,
		Failover: cluster.FailoverConfig{
			Mode: mode, Limit: 100,
			Exec: cluster.ExecConfig{
				ReplUser: testenv.ReplUser, ReplPassword: testenv.ReplPassword,
				HeartbeatPeriod: time.Second, ConnectRetry: time.Second, ReadOnlyReplicas: true,
				WaitKill: 200 * time.Millisecond, WaitTrx: 5 * time.Second, WaitWriteQuery: 10 * time.Second,
				SlaveWaitCatch: true, StateDir: testenv.ShortTempDir(t), KeepLogs: 5,
			},
			Routers: routers,
		},
	}
	m := cluster.NewMonitor(cfg, cluster.MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), events, testLogger(t).Logger)
	t.Cleanup(m.Close)
	return m
}

// testLogger sends logrus output to the test log (shown on failure or with -v).
func testLogger(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(tlogWriter{t})
	l.SetLevel(logrus.InfoLevel)
	return logrus.NewEntry(l)
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// run runs m.Run until the test ends.
func run(t testing.TB, m *cluster.Monitor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func states(s *topology.Snapshot) string {
	if s == nil {
		return ""
	}
	var out []string
	for _, srv := range s.Servers {
		out = append(out, string(srv.State))
	}
	return strings.Join(out, ",")
}

func masterOf(s *topology.Snapshot) string {
	if m, ok := s.MasterServer(); ok {
		return m.Addr.String()
	}
	return ""
}

// tickUntil ticks the monitor by hand until cond holds.
func tickUntil(t testing.TB, m *cluster.Monitor, within time.Duration, what string, cond func(*topology.Snapshot) bool) *topology.Snapshot {
	t.Helper()
	var s *topology.Snapshot
	waitFor(t, within, what, func() bool {
		s = m.Tick(context.Background())
		return cond(s)
	})
	return s
}

// healthy: a master and every other server a replica with both threads running.
func healthy(s *topology.Snapshot) bool {
	if s == nil || s.Master < 0 {
		return false
	}
	for i, srv := range s.Servers {
		if i == s.Master {
			if srv.State != topology.StateMaster {
				return false
			}
			continue
		}
		r, ok := srv.PrimaryReplication()
		if srv.State != topology.StateSlave || !ok || !r.Healthy() {
			return false
		}
	}
	return true
}

// clientDB connects to ProxySQL's clients' port as the application (a user ProxySQL only
// knows from the Router's user sync).
func (s *stack) clientDB(v6 bool, opts ...func(*mysql.Config)) *sql.DB {
	s.t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = appUser, appPass, "tcp", s.p.Addr(v6)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	for _, o := range opts {
		o(cfg)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	s.t.Cleanup(func() { db.Close() })
	return db
}

// serverIDOf runs a query through db and returns the server_id that answered.
func serverIDOf(db *sql.DB, query string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var id int
	err := db.QueryRowContext(ctx, query).Scan(&id)
	return id, err
}

type ack struct {
	id int64
	at time.Time
}

// writer inserts a row every interval through ProxySQL (one connection pool of one),
// recording what was acknowledged. Each writer has its own id range.
type writer struct {
	via     string
	attempt sync.Mutex // held during one insert
	paused  atomic.Bool
	mu      sync.Mutex
	acks    []ack
	errs    []string
	stop    chan struct{}
	done    chan struct{}
}

func (s *stack) startWriter(v6 bool, base int64, interval time.Duration) *writer {
	via := "ipv4"
	if v6 {
		via = "ipv6"
	}
	db := s.clientDB(v6)
	db.SetMaxOpenConns(1)
	w := &writer{via: via, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		id := base
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
			if w.paused.Load() {
				continue
			}
			id++
			w.attempt.Lock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO rmp.w (id, via, sid, at) VALUES (?, ?, @@server_id, NOW(6))", id, via)
			cancel()
			now := time.Now()
			w.attempt.Unlock()
			w.mu.Lock()
			if err == nil {
				w.acks = append(w.acks, ack{id, now})
			} else if len(w.errs) < 1000 {
				w.errs = append(w.errs, err.Error())
			}
			w.mu.Unlock()
		}
	}()
	s.t.Cleanup(w.Stop)
	return w
}

func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Pause stops writing once the insert in flight, if any, is answered.
func (w *writer) Pause() {
	w.paused.Store(true)
	w.attempt.Lock()
	w.attempt.Unlock() //nolint:staticcheck // waits for the attempt in flight
}

func (w *writer) Resume() { w.paused.Store(false) }

func (w *writer) Acks() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

func (w *writer) Errors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...)
}

func (w *writer) waitAcks(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(w.Acks()) < n {
		if time.Now().After(deadline) {
			errs := w.Errors()
			if len(errs) > 5 {
				errs = errs[len(errs)-5:]
			}
			t.Fatalf("writer over %s: %d acknowledged writes, want %d within %v; last errors %q", w.via, len(w.Acks()), n, within, errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstAckAfter returns the first acknowledgement at or after t0.
func (w *writer) firstAckAfter(t0 time.Time) (ack, bool) {
	for _, a := range w.Acks() {
		if !a.at.Before(t0) {
			return a, true
		}
	}
	return ack{}, false
}

// longestGap is the longest time between two consecutive acknowledgements in [from, to].
func (w *writer) longestGap(from, to time.Time) time.Duration {
	var prev time.Time
	var max time.Duration
	for _, a := range w.Acks() {
		if a.at.Before(from) {
			prev = a.at
			continue
		}
		if a.at.After(to) {
			if !prev.IsZero() && a.at.Sub(prev) > max {
				max = a.at.Sub(prev)
			}
			break
		}
		if !prev.IsZero() && a.at.Sub(prev) > max {
			max = a.at.Sub(prev)
		}
		prev = a.at
	}
	return max
}

// checkAcks fails unless every acknowledged write is on srv, and every write acknowledged
// after t0 was committed by srv itself (its server_id): none reached the old master.
func checkAcks(t testing.TB, srv *testenv.Server, t0 time.Time, ws ...*writer) {
	t.Helper()
	db := srv.DB(t)
	for _, w := range ws {
		acks := w.Acks()
		if len(acks) == 0 {
			t.Fatalf("writer over %s: nothing acknowledged", w.via)
		}
		got := map[int64]int{}
		rows, err := db.Query("SELECT id, sid FROM rmp.w WHERE via = ?", w.via)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var sid int
			if err := rows.Scan(&id, &sid); err != nil {
				t.Fatal(err)
			}
			got[id] = sid
		}
		rows.Close()
		for _, a := range acks {
			sid, ok := got[a.id]
			if !ok {
				t.Fatalf("writer over %s: acknowledged write %d lost (not on the new master %s)", w.via, a.id, srv.Addr())
			}
			if a.at.After(t0) && sid != srv.ServerID() {
				t.Fatalf("writer over %s: write %d acknowledged after the switch was committed by server_id %d, not the new master's %d", w.via, a.id, sid, srv.ServerID())
			}
		}
	}
}

// timedRouter records when the executor calls Failover (right after the promotion).
type timedRouter struct {
	router.Router
	mu    sync.Mutex
	calls []time.Time
	errs  []error
}

func (r *timedRouter) Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	r.mu.Lock()
	r.calls = append(r.calls, time.Now())
	r.mu.Unlock()
	err := r.Router.Failover(ctx, oldMaster, newMaster)
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	return err
}

func (r *timedRouter) Calls() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls...)
}

func (r *timedRouter) Errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func init() {
	// The driver logs every connection cut during a switch; the tests count them.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

// loads returns ProxySQL's Servers_table_version: it grows with every LOAD MYSQL SERVERS
// TO RUNTIME, not with the moves of ProxySQL's own monitor.
func (s *stack) loads() int {
	s.t.Helper()
	var v int
	if err := s.admin.QueryRow("SELECT variable_value FROM stats_mysql_global WHERE variable_name = 'Servers_table_version'").Scan(&v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

// query runs one admin query returning one value.
func (s *stack) query(q string) string {
	s.t.Helper()
	var v string
	if err := s.admin.QueryRow(q).Scan(&v); err != nil {
		s.t.Fatalf("proxysql admin: %s: %v", q, err)
	}
	return v
}

// strs runs an admin query and returns its rows, columns joined by spaces, sorted.
func (s *stack) strs(q string) []string {
	s.t.Helper()
	rs, err := s.admin.Query(q)
	if err != nil {
		s.t.Fatalf("proxysql admin: %s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rs.Scan(p...); err != nil {
			s.t.Fatal(err)
		}
		var parts []string
		for _, x := range v {
			parts = append(parts, x.String)
		}
		out = append(out, strings.Join(parts, " "))
	}
	sort.Strings(out)
	return out
}

// waitSync waits until every running server but master has applied master's
// @@gtid_binlog_pos.
func (s *stack) waitSync(master *testenv.Server) {
	s.t.Helper()
	pos := master.QueryString(s.t, "SELECT @@gtid_binlog_pos")
	for _, srv := range s.c.Servers {
		if srv == master || !srv.Running() {
			continue
		}
		if got := srv.QueryString(s.t, "SELECT MASTER_GTID_WAIT(?, 20)", pos); got != "0" {
			s.t.Fatalf("server %d did not reach %s within 20s", srv.Index(), pos)
		}
	}
}
