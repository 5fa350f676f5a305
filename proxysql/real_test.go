package proxysql_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/proxysql"
	"replication-manager-pro/topology"
)

// Tests of the Router on a real ProxySQL 2.7 in front of real MariaDB 10.11 servers. The
// application connects to ProxySQL's clients' port as a user ProxySQL knows only through
// the Router's user sync, over 127.0.0.1 and [::1].

// Writes through ProxySQL over [::1] and 127.0.0.1 (a 10 ms writer each) survive a kill -9
// of the master: the monitor fails over automatically, the executor moves ProxySQL's writer,
// no acknowledged write is lost and every write acknowledged after the move was committed
// by the new master. The old master, restarted, rejoins and the Router makes it a reader.
func TestRealFailoverKill9KeepsWritesOverBothFamilies(t *testing.T) {
	s := startStack(t, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("automatic", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)

	old := s.c.Master()
	// Kill a master whose replicas have everything it acknowledged, so that it may rejoin.
	w4.Pause()
	w6.Pause()
	s.c.WaitSync(t)
	old.Kill()
	killed := time.Now()
	w4.Resume()
	w6.Resume()
	waitFor(t, 20*time.Second, "failover", func() bool {
		ms, ok := m.Snapshot().MasterServer()
		return ok && ms.Addr != addrOf(old) && ms.State == topology.StateMaster && len(tr.Calls()) == 1
	})
	if err := tr.Errs()[0]; err != nil {
		t.Fatalf("router failover: %v", err)
	}
	nm := s.server(masterOf(m.Snapshot()))
	t0 := tr.Calls()[0]
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
		a, _ := w.firstAckAfter(killed)
		t.Logf("writer over %s: first write acknowledged %v after kill -9 (%v after the router's failover call); %d errors",
			w.via, a.at.Sub(killed).Round(time.Millisecond), a.at.Sub(t0).Round(time.Millisecond), len(w.Errors()))
	}
	w4.Stop()
	w6.Stop()
	checkAcks(t, nm, t0, w4, w6)
	other := s.c.Servers[1]
	if other == nm {
		other = s.c.Servers[2]
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second,
		"10 "+s.label(nm)+" ONLINE", "20 "+s.label(other)+" ONLINE", "666 s0 OFFLINE_SOFT")

	// The old master comes back, rejoins as a replica: the Router makes it a reader.
	old.Restart()
	waitFor(t, 20*time.Second, "old master rejoined", func() bool { return healthy(m.Snapshot()) })
	s.waitRows("runtime_mysql_servers", 5*time.Second,
		"10 "+s.label(nm)+" ONLINE", "20 "+s.label(other)+" ONLINE", "20 s0 ONLINE")
}

// label is the "sN" name of a server in table dumps.
func (s *stack) label(srv *testenv.Server) string { return "s" + strconv.Itoa(srv.Index()) }

// A switchover under two 10 ms writers (over [::1] and 127.0.0.1) through ProxySQL: no
// acknowledged write is lost, none reaches the demoted master (its own server_id gains no
// GTID after the switch), and the demoted master becomes a reader.
func TestRealSwitchoverUnderWriterLeavesNothingOnDemotedMaster(t *testing.T) {
	s := startStack(t, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)

	old, nm := s.c.Master(), s.c.Servers[2]
	target := addrOf(nm)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, res, err := m.Switchover(ctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	if err := tr.Errs()[0]; err != nil {
		t.Fatalf("router failover: %v", err)
	}
	oldSeq := binlogSeq(t, old, old.ServerID())
	t0 := tr.Calls()[0]
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
		t.Logf("writer over %s: longest gap between two acknowledged writes %v (%d errors)", w.via,
			w.longestGap(start.Add(-50*time.Millisecond), time.Now()).Round(time.Millisecond), len(w.Errors()))
	}
	time.Sleep(300 * time.Millisecond) // more ticks and writes
	w4.Stop()
	w6.Stop()

	pos := nm.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := old.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
		t.Fatalf("demoted master did not catch up with %s", pos)
	}
	if seq := binlogSeq(t, old, old.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", old.ServerID(), seq, oldSeq)
	}
	checkAcks(t, nm, t0, w4, w6)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 ONLINE")
}

// binlogSeq returns the sequence of (domain 0, serverID) in a server's gtid_binlog_state.
func binlogSeq(t testing.TB, srv *testenv.Server, serverID int) uint64 {
	t.Helper()
	for _, p := range strings.Split(srv.QueryString(t, "SELECT @@gtid_binlog_state"), ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		g, err := gtid.ParseGTID(p)
		if err != nil {
			t.Fatal(err)
		}
		if g.Domain == 0 && g.ServerID == uint32(serverID) {
			return g.Seq
		}
	}
	return 0
}

// readsReach opens n new sessions over each family and returns the server_ids that
// answered a plain SELECT (sent to the readers by the readwritesplit query rules).
func (s *stack) readsReach(n int) map[int]int {
	s.t.Helper()
	seen := map[int]int{}
	for i := 0; i < n; i++ {
		for _, v6 := range []bool{false, true} {
			db := s.clientDB(v6)
			id, err := serverIDOf(db, "SELECT @@server_id")
			db.Close()
			if err != nil {
				s.t.Fatalf("read through proxysql at %s: %v", s.p.Addr(v6), err)
			}
			seen[id]++
		}
	}
	return seen
}

// Maintenance through the monitor (SetMaintenance, then its ticks) with two writers
// running: a replica in maintenance drains (OFFLINE_SOFT: no new read reaches it, a tick
// does not undo it, a switchover keeps it drained); the master in maintenance drains its
// writes (the open sessions keep writing, as OFFLINE_SOFT lets them; the cluster refuses a
// switchover of a master in maintenance). Across all of it and a switchover, no
// acknowledged write is lost and none reaches the demoted master.
func TestRealMaintenanceDrainsWithoutLosingWrites(t *testing.T) {
	s := startStack(t, stackConfig{tags: []string{"readwritesplit"}})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)
	ctx := context.Background()
	s0, s1, s2 := s.c.Servers[0], s.c.Servers[1], s.c.Servers[2]

	if err := m.SetMaintenance(ctx, addrOf(s1), true); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	time.Sleep(500 * time.Millisecond) // ticks: the snapshot now carries the flag
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	if seen := s.readsReach(10); seen[s1.ServerID()] > 0 || seen[s2.ServerID()] == 0 {
		t.Fatalf("reads by server_id during the maintenance of server %d: %v", s1.ServerID(), seen)
	}

	if err := m.SetMaintenance(ctx, addrOf(s0), true); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 OFFLINE_SOFT", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+20, 5*time.Second) // open sessions drain: they keep writing
	}
	if err := m.SetMaintenance(ctx, addrOf(s0), false); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")

	target := addrOf(s2)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, res, err := m.Switchover(sctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	t0 := tr.Calls()[0]
	oldSeq := binlogSeq(t, s0, s0.ServerID())
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
	}
	w4.Stop()
	w6.Stop()
	checkAcks(t, s2, t0, w4, w6)
	if seq := binlogSeq(t, s0, s0.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", s0.ServerID(), seq, oldSeq)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 OFFLINE_SOFT")
	if err := m.SetMaintenance(ctx, addrOf(s1), false); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 ONLINE")
	if seen := s.readsReach(10); seen[s2.ServerID()] > 0 || seen[s0.ServerID()] == 0 || seen[s1.ServerID()] == 0 {
		t.Fatalf("reads by server_id after the maintenance: %v", seen)
	}
}

// Bootstrap on a ProxySQL fresh from its cnf, then steady state: the hostgroup pair and
// the rows are in runtime, the application's account (only on MariaDB) is synced and
// logs in over both families, the readwritesplit rules send plain SELECTs to the replicas
// and locking reads, transactions and writes to the master; an unchanged tick loads
// nothing; a password rotated and an account created on the master reach ProxySQL.
func TestRealBootstrapUsersAndReadWriteSplit(t *testing.T) {
	s := startStack(t, stackConfig{tags: []string{"readwritesplit"},
		opts: func(o *proxysql.Options) { o.UserSyncInterval = time.Nanosecond }})
	s0, s1, s2 := s.c.Servers[0], s.c.Servers[1], s.c.Servers[2]
	if _, err := serverIDOf(s.clientDB(false), "SELECT @@server_id"); err == nil {
		t.Fatal("the application logged in through ProxySQL before any user sync")
	}
	m := s.monitor("manual")
	snap := tickUntil(t, m, 10*time.Second, "healthy", healthy)
	ctx := context.Background()
	if err := s.r.Bootstrap(ctx, snap); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if got := s.strs("SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups"); strings.Join(got, ",") != "10 20 c1" {
		t.Fatalf("runtime replication hostgroups %q", got)
	}
	if got := s.query("SELECT password FROM runtime_mysql_users WHERE username = 'app' AND frontend = 1"); !strings.HasPrefix(got, "*") || len(got) != 41 {
		t.Fatalf("app's password in ProxySQL is not a mysql_native_password hash (%d characters)", len(got))
	}

	for _, v6 := range []bool{false, true} {
		db := s.clientDB(v6)
		if _, err := db.Exec("INSERT INTO rmp.w (id, via, sid, at) VALUES (?, 'setup', @@server_id, NOW(6))", map[bool]int{false: 1, true: 2}[v6]); err != nil {
			t.Fatalf("insert through %s: %v", s.p.Addr(v6), err)
		}
	}
	if got := s0.QueryString(t, "SELECT GROUP_CONCAT(DISTINCT sid) FROM rmp.w WHERE via = 'setup'"); got != strconv.Itoa(s0.ServerID()) {
		t.Fatalf("writes through ProxySQL committed by server_id %s, want the master's %d", got, s0.ServerID())
	}
	s.c.WaitSync(t)
	if seen := s.readsReach(10); seen[s0.ServerID()] > 0 || seen[s1.ServerID()] == 0 || seen[s2.ServerID()] == 0 {
		t.Fatalf("plain SELECTs by server_id %v: want both replicas, never the master", seen)
	}
	db := s.clientDB(true)
	for _, q := range []string{
		"SELECT @@server_id FROM rmp.w WHERE id = 1 FOR UPDATE",
		"SELECT @@server_id FROM rmp.w WHERE id = 1 LOCK IN SHARE MODE",
	} {
		if id, err := serverIDOf(db, q); err != nil || id != s0.ServerID() {
			t.Fatalf("%s: server_id %d (%v), want the master's %d", q, id, err, s0.ServerID())
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var inTx int
	if err := tx.QueryRow("SELECT @@server_id").Scan(&inTx); err != nil || inTx != s0.ServerID() {
		t.Fatalf("plain SELECT inside a transaction: server_id %d (%v), want the master's (transaction_persistent)", inTx, err)
	}
	tx.Rollback()

	v := s.loads()
	for i := 0; i < 3; i++ {
		if err := s.r.Reconcile(ctx, m.Tick(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.loads(); got != v {
		t.Fatalf("unchanged ticks loaded mysql_servers %d times", got-v)
	}

	// Rotation on the master, with sql_log_bin on: it replicates, as an operator's would.
	s0.Exec(t, "ALTER USER app@'%' IDENTIFIED BY 'rotated-pw'")
	s0.Exec(t, "CREATE USER tenant1@'%' IDENTIFIED BY 'tenant-pw'")
	s0.Exec(t, "GRANT SELECT ON rmp.* TO tenant1@'%'")
	if err := s.r.Reconcile(ctx, m.Tick(ctx)); err != nil {
		t.Fatal(err)
	}
	for _, u := range [][2]string{{"app", "rotated-pw"}, {"tenant1", "tenant-pw"}} {
		db := s.clientDB(false, func(c *mysql.Config) { c.User, c.Passwd = u[0], u[1] })
		if _, err := serverIDOf(db, "SELECT @@server_id FROM rmp.w WHERE id = 1 FOR UPDATE"); err != nil && !strings.Contains(err.Error(), "1142") {
			t.Fatalf("%s through ProxySQL after the sync: %v", u[0], err)
		}
	}
	if _, err := serverIDOf(s.clientDB(false), "SELECT 1"); err == nil {
		t.Fatal("the old password of app still logs in through ProxySQL")
	}
}

// Read on master, on and off, on the same ProxySQL. With proxy-servers-read-on-master the
// Router writes the master into the reader hostgroup too and reads reach it; off, they
// never do. ProxySQL's mysql-monitor_writer_is_also_reader only acts when its monitor
// sees a read_only change: it neither strips nor adds the master's reader row the Router
// loaded, and the Router leaves to it the rows it does move.
func TestRealReadOnMasterOnAndOff(t *testing.T) {
	s := startStack(t, stackConfig{tags: []string{"readwritesplit"}})
	s0 := s.c.Master()
	m := s.monitor("manual")
	snap := tickUntil(t, m, 10*time.Second, "healthy", healthy)
	ctx := context.Background()
	if err := s.r.Bootstrap(ctx, snap); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if seen := s.readsReach(10); seen[s0.ServerID()] > 0 {
		t.Fatalf("read on master off: reads by server_id %v reached the master", seen)
	}

	s.opts.Read = proxysql.ReadPolicy{OnMaster: true}
	on := s.newRouter()
	if err := on.Bootstrap(ctx, m.Tick(ctx)); err != nil {
		t.Fatal(err)
	}
	// monitor_writer_is_also_reader is false (no readonmaster tag), yet the loaded reader
	// row of the master stays: there is no read_only change for the monitor to act on.
	v := s.loads()
	for i := 0; i < 6; i++ {
		time.Sleep(250 * time.Millisecond)
		if err := on.Reconcile(ctx, m.Tick(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if got := s.loads(); got != v {
		t.Fatalf("steady read-on-master ticks loaded mysql_servers %d times", got-v)
	}
	if seen := s.readsReach(15); seen[s0.ServerID()] == 0 {
		t.Fatalf("read on master on: reads by server_id %v never reached the master", seen)
	}

	if err := s.r.Bootstrap(ctx, m.Tick(ctx)); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if seen := s.readsReach(10); seen[s0.ServerID()] > 0 {
		t.Fatalf("read on master off again: reads by server_id %v reached the master", seen)
	}

	// Nor does it add the master to the readers when the variable turns true.
	s.exec("SET mysql-monitor_writer_is_also_reader = 'true'")
	s.exec("LOAD MYSQL VARIABLES TO RUNTIME")
	v = s.loads()
	for i := 0; i < 5; i++ {
		time.Sleep(250 * time.Millisecond)
		if err := s.r.Reconcile(ctx, m.Tick(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if got := s.loads(); got != v {
		t.Fatalf("steady ticks loaded mysql_servers %d times", got-v)
	}
}

// with returns a copy of a snapshot with server i changed by f.
func with(snap *topology.Snapshot, i int, f func(*topology.Server)) *topology.Snapshot {
	c := *snap
	c.Servers = append([]topology.Server(nil), snap.Servers...)
	f(&c.Servers[i])
	c.Time = time.Now()
	return &c
}

// Reconcile next to ProxySQL's own monitor (mysql_replication_hostgroups): ProxySQL moves a
// replica made writable into the writer hostgroup and back once read-only again, and the
// Router, which knows read_only is the cause, loads nothing meanwhile; a backend removed
// while a query runs on it stays in runtime as OFFLINE_HARD until the query ends, and the
// Router does not reload for it; a backend ProxySQL shunned for its connection errors
// (SHUNNED) is left to ProxySQL while the manager sees it healthy.
func TestRealReconcileAlongsideProxySQLMonitor(t *testing.T) {
	s := startStack(t, stackConfig{tags: []string{"readwritesplit"}})
	s1, s2 := s.c.Servers[1], s.c.Servers[2]
	m := s.monitor("manual")
	snap := tickUntil(t, m, 10*time.Second, "healthy", healthy)
	ctx := context.Background()
	if err := s.r.Bootstrap(ctx, snap); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")

	// read_only moves. The snapshot says what the manager sees: s2 writable.
	v := s.loads()
	s2.Exec(t, "SET GLOBAL read_only = 0")
	writable := with(snap, 2, func(x *topology.Server) { x.ReadOnly = false })
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "10 s2 ONLINE", "20 s1 ONLINE")
	for i := 0; i < 3; i++ {
		if err := s.r.Reconcile(ctx, writable); err != nil {
			t.Fatal(err)
		}
	}
	s2.Exec(t, "SET GLOBAL read_only = 1") // the manager's enforcement
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	if err := s.r.Reconcile(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if got := s.loads(); got != v {
		t.Fatalf("the Router loaded mysql_servers %d times while ProxySQL's monitor moved a writable replica", got-v)
	}

	// OFFLINE_HARD leftovers: a read runs on a replica while the Router takes it offline.
	// The read lasts long enough for the Reconcile and the check below on a loaded machine
	// (with 3 s, CI saw the leftover gone before it looked).
	db := s.clientDB(false, func(c *mysql.Config) { c.ReadTimeout = 20 * time.Second })
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT SLEEP(8)"); done <- err }()
	var busy int
	waitFor(t, 3*time.Second, "a reader with a connection in use", func() bool {
		for i, srv := range s.c.Servers {
			if s.query(fmt.Sprintf("SELECT IFNULL(SUM(ConnUsed), 0) FROM stats_mysql_connection_pool WHERE hostgroup = 20 AND srv_port = %d", srv.Port())) != "0" {
				busy = i
				return true
			}
		}
		return false
	})
	other := 3 - busy
	standalone := with(snap, busy, func(x *topology.Server) {
		x.State, x.Replications, x.Role = topology.StateStandAlone, nil, topology.RoleStandalone
	})
	if err := s.r.Reconcile(ctx, standalone); err != nil {
		t.Fatal(err)
	}
	b, o := "s"+strconv.Itoa(busy), "s"+strconv.Itoa(other)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 "+b+" OFFLINE_HARD", "20 "+o+" ONLINE", "666 "+b+" OFFLINE_SOFT")
	v = s.loads()
	for i := 0; i < 3; i++ {
		if err := s.r.Reconcile(ctx, standalone); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.loads(); got != v {
		t.Fatalf("the Router loaded mysql_servers %d times for an OFFLINE_HARD leftover", got-v)
	}
	err := <-done
	t.Logf("the query on the backend taken offline ended with %v", err)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 "+o+" ONLINE", "666 "+b+" OFFLINE_SOFT")
	if err := s.r.Reconcile(ctx, snap); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")

	// SHUNNED: s1 refuses the application's account (locked there only); ProxySQL's
	// connection errors shun it, reads go on through s2, and the Router, whose snapshot
	// sees s1 healthy, leaves ProxySQL's verdict alone.
	s1.Exec(t, "SET sql_log_bin = 0")
	s1.Exec(t, "ALTER USER app@'%' ACCOUNT LOCK")
	s1.Exec(t, "SET sql_log_bin = 1")
	waitFor(t, 10*time.Second, "s1 shunned", func() bool {
		for i := 0; i < 5; i++ {
			db := s.clientDB(false)
			serverIDOf(db, "SELECT @@server_id")
			db.Close()
		}
		return contains(s.rows("runtime_mysql_servers"), "20 s1 SHUNNED")
	})
	v = s.loads()
	for i := 0; i < 3; i++ {
		if err := s.r.Reconcile(ctx, m.Tick(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.loads(); got != v {
		t.Fatalf("the Router loaded mysql_servers %d times for a SHUNNED backend", got-v)
	}
	if seen := s.readsReach(5); seen[s2.ServerID()] != 10 {
		t.Fatalf("reads with s1 shunned: by server_id %v, want all on server %d", seen, s2.ServerID())
	}
}

func contains(l []string, x string) bool {
	for _, e := range l {
		if e == x {
			return true
		}
	}
	return false
}

// ProxySQL is killed, the master dies and the failover runs while ProxySQL is down: the
// database side completes, the Router says its move is pending. ProxySQL then restarts on
// its datadir, stale (it holds the routing saved before the failover: the dead master as
// writer, without the application's account if never saved): the manager sees the new
// admin connection and rebuilds hostgroups, servers and users at once, not at the next
// user sync a minute later, and writes resume on the new master with nothing lost. A cnf
// changed meanwhile is ignored on such a restart and merged with --reload.
func TestRealProxySQLRestartedDuringFailover(t *testing.T) {
	s := startStack(t, stackConfig{opts: func(o *proxysql.Options) {
		o.SaveToDisk = true
		o.FailoverBudget = 300 * time.Millisecond
	}})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("automatic", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w := s.startWriter(true, 0, 10*time.Millisecond)
	w.waitAcks(t, 20, 10*time.Second)
	s.exec("DELETE FROM mysql_users WHERE username = 'app'") // as if never saved: the
	s.exec("SAVE MYSQL USERS TO DISK")                       // restart must bring it back

	s.p.Kill()
	w.Pause()
	s.c.WaitSync(t)
	old := s.c.Master()
	old.Kill()
	w.Resume()
	waitFor(t, 20*time.Second, "failover with ProxySQL down", func() bool {
		ms, ok := m.Snapshot().MasterServer()
		return ok && ms.Addr != addrOf(old) && len(tr.Errs()) == 1
	})
	if err := tr.Errs()[0]; err == nil || !strings.Contains(err.Error(), "left pending") {
		t.Fatalf("router failover with ProxySQL down: %v", err)
	}
	nm := s.server(masterOf(m.Snapshot()))
	if ro := nm.QueryString(t, "SELECT @@read_only"); ro != "0" {
		t.Fatalf("new master read_only=%s: the database side of the failover did not complete", ro)
	}

	restarted := time.Now()
	s.p.Restart()
	label := s.label(nm)
	var other string
	for _, srv := range s.c.Replicas() {
		if srv != nm {
			other = s.label(srv)
		}
	}
	if other == "" {
		other = "s1"
	}
	s.waitRows("runtime_mysql_servers", 10*time.Second, "10 "+label+" ONLINE", "20 "+other+" ONLINE", "666 s0 OFFLINE_SOFT")
	waitFor(t, 10*time.Second, "app's account back in ProxySQL", func() bool {
		return s.query("SELECT COUNT(*) FROM runtime_mysql_users WHERE username = 'app'") != "0"
	})
	t.Logf("ProxySQL's runtime rebuilt %v after its restart", time.Since(restarted).Round(time.Millisecond))
	n := len(w.Acks())
	w.waitAcks(t, n+20, 15*time.Second)
	w.Stop()
	checkAcks(t, nm, restarted, w)

	// A changed cnf: ignored by a restart on an existing database, merged by --reload.
	s.params.Users = append(s.params.Users, proxysql.User{Username: "cnfonly", Password: "cnf-pw"})
	cnf, err := proxysql.GenerateConfig(s.params)
	if err != nil {
		t.Fatal(err)
	}
	s.p.WriteConfig(cnf)
	s.p.Restart()
	if got := s.query("SELECT COUNT(*) FROM mysql_users WHERE username = 'cnfonly'"); got != "0" {
		t.Fatal("a plain restart read the changed cnf")
	}
	s.p.Restart("--reload")
	if got := s.query("SELECT COUNT(*) FROM runtime_mysql_users WHERE username = 'cnfonly'"); got == "0" {
		t.Fatal("a restart with --reload did not merge the changed cnf")
	}
}

// The admin interface hangs (ProxySQL stopped with SIGSTOP: connections are accepted,
// nothing answers) during a switchover: the database side completes within the Router's
// failover budget, the Router says its move is pending, and once ProxySQL answers again
// the next tick applies it; no write reaches the demoted master.
func TestRealSlowAdminDuringSwitchover(t *testing.T) {
	s := startStack(t, stackConfig{opts: func(o *proxysql.Options) { o.FailoverBudget = 500 * time.Millisecond }})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w := s.startWriter(false, 0, 10*time.Millisecond)
	w.waitAcks(t, 20, 10*time.Second)

	old, nm := s.c.Master(), s.c.Servers[1]
	target := addrOf(nm)
	// No insert in flight when ProxySQL freezes: one the old master committed just before
	// would reach its client only after the resume, looking like a write acknowledged
	// after the switch by the old master (seen on a loaded CI machine).
	w.Pause()
	s.p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, res, err := m.Switchover(ctx, &target, false)
	t.Logf("switchover with ProxySQL stopped: %v in %v", err, time.Since(start).Round(time.Millisecond))
	if !res.Promoted {
		t.Fatalf("switchover did not promote: %v (%+v)", err, res)
	}
	if err := tr.Errs()[0]; err == nil || !strings.Contains(err.Error(), "left pending") {
		t.Fatalf("router failover with ProxySQL stopped: %v", err)
	}
	st := old.SlaveStatus(t)
	if st["Slave_IO_Running"] != "Yes" || st["Master_Port"] != strconv.Itoa(nm.Port()) {
		t.Fatalf("demoted master not replicating from the new one: %v %v", st["Slave_IO_Running"], st["Master_Port"])
	}
	oldSeq := binlogSeq(t, old, old.ServerID())
	t0 := tr.Calls()[0]
	s.p.Cont()
	w.Resume()
	s.waitRows("runtime_mysql_servers", 10*time.Second, "10 s1 ONLINE", "20 s0 ONLINE", "20 s2 ONLINE")
	n := len(w.Acks())
	w.waitAcks(t, n+20, 15*time.Second)
	w.Stop()
	checkAcks(t, nm, t0, w)
	if seq := binlogSeq(t, old, old.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", old.ServerID(), seq, oldSeq)
	}
}
