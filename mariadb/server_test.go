package mariadb

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
)

// open returns a Server for a testenv server, over IPv6 when v6 is set.
func open(t testing.TB, s *testenv.Server, v6 bool, opt Options) *Server {
	t.Helper()
	host := s.Host()
	if v6 {
		host = s.Host6()
	}
	srv, err := Open(ipv6.HostPort{Host: host, Port: s.Port()}, testenv.RootUser, testenv.RootPassword, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func probe(t testing.TB, s *Server) *Status {
	t.Helper()
	st, err := s.Probe(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return st
}

func TestProbeRoles(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m := open(t, c.Master(), false, Options{})
	ms := probe(t, m)
	if !ms.Version.MariaDB || !ms.Version.AtLeast(10, 0, 0) {
		t.Errorf("version %+v", ms.Version)
	}
	if ms.ServerID != 1 || ms.ReadOnly || !ms.LogBin || !ms.LogSlaveUpdates || !ms.GTIDStrictMode || ms.BinlogFormat != "ROW" {
		t.Errorf("master status %+v", ms)
	}
	if ms.IsReplica() {
		t.Errorf("master has replication connections: %+v", ms.Replications)
	}
	if ms.ConnectedReplicas != 2 {
		t.Errorf("master sees %d binlog dump threads, want 2", ms.ConnectedReplicas)
	}
	if ms.SemiSyncMasterEnabled || ms.SemiSyncSlaveEnabled || ms.SemiSyncMasterStatus {
		t.Errorf("semi-sync reported on though never enabled: %+v", ms)
	}

	c.Master().Exec(t, "CREATE DATABASE probe")
	c.Master().Exec(t, "CREATE TABLE probe.t (id INT PRIMARY KEY)")
	c.WaitSync(t)
	ms2 := probe(t, m)
	if !ms2.GTIDBinlogPos.AheadOf(ms.GTIDBinlogPos) {
		t.Errorf("gtid_binlog_pos did not advance after writes: %s -> %s", ms.GTIDBinlogPos, ms2.GTIDBinlogPos)
	}
	if g, ok := ms2.GTIDBinlogPos.Domain(0); !ok || g.ServerID != 1 || g.Seq != 2 {
		t.Errorf("master gtid_binlog_pos = %s, want 0-1-2", ms2.GTIDBinlogPos)
	}
	if !ms2.GTIDCurrentPos.Equal(ms2.GTIDBinlogPos) {
		t.Errorf("master current_pos %s != binlog_pos %s", ms2.GTIDCurrentPos, ms2.GTIDBinlogPos)
	}

	for _, r := range c.Replicas() {
		rs := probe(t, open(t, r, false, Options{}))
		if !rs.ReadOnly || rs.ServerID != uint32(r.ServerID()) || rs.ConnectedReplicas != 0 {
			t.Errorf("replica %d: read_only=%v server_id=%d dumps=%d", r.Index(), rs.ReadOnly, rs.ServerID, rs.ConnectedReplicas)
		}
		if len(rs.Replications) != 1 {
			t.Fatalf("replica %d: %d replication connections", r.Index(), len(rs.Replications))
		}
		rep, ok := rs.Replication("")
		if !ok {
			t.Fatal("default connection not found")
		}
		if !rep.IORunning() || !rep.SQLRunning() || rep.MasterHost != "127.0.0.1" || rep.MasterPort != c.Master().Port() ||
			rep.MasterUser != testenv.ReplUser || rep.UsingGtid != "Slave_Pos" || rep.MasterServerID != 1 {
			t.Errorf("replica %d replication %+v", r.Index(), rep)
		}
		if rep.SecondsBehindMaster == nil || *rep.SecondsBehindMaster != 0 {
			t.Errorf("replica %d Seconds_Behind_Master = %v", r.Index(), rep.SecondsBehindMaster)
		}
		if !rep.GtidIOPos.Equal(ms2.GTIDBinlogPos) || !rs.GTIDSlavePos.Equal(ms2.GTIDBinlogPos) || !rep.GtidSlavePos.Equal(rs.GTIDSlavePos) {
			t.Errorf("replica %d positions io=%s slave=%s (row %s), master %s", r.Index(), rep.GtidIOPos, rs.GTIDSlavePos, rep.GtidSlavePos, ms2.GTIDBinlogPos)
		}
		if rep.SlaveHeartbeatPeriod != time.Second {
			t.Errorf("heartbeat period %v", rep.SlaveHeartbeatPeriod)
		}
		if rep.ReadMasterLogPos == 0 || rep.ExecMasterLogPos == 0 || rep.RelayMasterLogFile == "" || rep.MasterLogFile == "" {
			t.Errorf("binlog coordinates missing: %+v", rep)
		}
	}
}

func TestStopSQLThreadAndRestart(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	r := open(t, c.Replicas()[0], false, Options{})
	ctx := ctxT(t, 20*time.Second)
	if err := r.StopReplicaSQLThread(ctx, ""); err != nil {
		t.Fatal(err)
	}
	rep, _ := probe(t, r).Replication("")
	if rep.SlaveSQLRunning != ThreadNo || !rep.IORunning() || rep.SecondsBehindMaster != nil {
		t.Errorf("after STOP SLAVE SQL_THREAD: io=%s sql=%s lag=%v", rep.SlaveIORunning, rep.SlaveSQLRunning, rep.SecondsBehindMaster)
	}
	// Writes are received but not applied: IO position ahead of the applied one.
	c.Master().Exec(t, "CREATE DATABASE pending")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := probe(t, r)
		rep, _ = st.Replication("")
		if rep.GtidIOPos.AheadOf(st.GTIDSlavePos) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IO pos %s never ahead of slave pos %s", rep.GtidIOPos, st.GTIDSlavePos)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.StopReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	rep, _ = probe(t, r).Replication("")
	if rep.SlaveIORunning != ThreadNo || rep.SlaveSQLRunning != ThreadNo {
		t.Errorf("after STOP SLAVE: io=%s sql=%s", rep.SlaveIORunning, rep.SlaveSQLRunning)
	}
	if err := r.StartReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c.WaitSync(t)
	if err := r.StopAllReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.ResetReplicaAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if st := probe(t, r); st.IsReplica() {
		t.Errorf("replication still configured after RESET SLAVE ALL: %+v", st.Replications)
	}
}

func TestChangeMasterRepointsToReplica(t *testing.T) {
	// 0 master, 1 and 2 replicas; repoint 2 under 1 (a relay), over IPv6, with a password
	// full of quotes and backslashes.
	c := testenv.StartCluster(t, 3)
	const pw = `pa'ss\word"; --`
	createUser := func(s *testenv.Server) {
		db := s.DB(t)
		conn, err := db.Conn(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := ctxT(t, 10*time.Second)
		for _, q := range []string{"SET sql_log_bin=0", "CREATE USER 'repl2'@'%' IDENTIFIED BY " + quoteString(pw),
			"GRANT REPLICATION SLAVE ON *.* TO 'repl2'@'%'"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", strings.Fields(q)[0], err)
			}
		}
	}
	createUser(c.Servers[1])

	r2 := open(t, c.Servers[2], false, Options{})
	ctx := ctxT(t, 20*time.Second)
	if err := r2.StopReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	o := ChangeMasterOptions{
		Host: ipv6.HostPort{Host: "::1", Port: c.Servers[1].Port()}, User: "repl2", Password: pw,
		UseGTID: GTIDSlavePos, ConnectRetry: time.Second, HeartbeatPeriod: 500 * time.Millisecond,
	}
	if err := r2.ChangeMaster(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := r2.StartReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c.Master().Exec(t, "CREATE DATABASE via_relay")
	c.WaitSync(t) // replica 2 now applies through replica 1
	st := probe(t, r2)
	rep, _ := st.Replication("")
	if rep.MasterHost != "::1" || rep.MasterPort != c.Servers[1].Port() || rep.MasterServerID != 2 || rep.MasterUser != "repl2" ||
		rep.SlaveHeartbeatPeriod != 500*time.Millisecond || !rep.IORunning() || !rep.SQLRunning() {
		t.Errorf("after repoint: %+v", rep)
	}
	relay := probe(t, open(t, c.Servers[1], false, Options{}))
	if relay.ConnectedReplicas != 1 {
		t.Errorf("relay has %d binlog dump threads, want 1", relay.ConnectedReplicas)
	}

	// A wrong password: the error must not carry it.
	if err := r2.StopReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	o.Password = strings.Repeat("x", 300) + "Leak"
	err := r2.ChangeMaster(ctx, o)
	if err == nil || strings.Contains(err.Error(), "Leak") {
		t.Errorf("over-long password: err=%v", err)
	}
}

func TestMultiSourceChannel(t *testing.T) {
	c := testenv.StartCluster(t, 2, testenv.Standalone())
	s := open(t, c.Servers[1], false, Options{})
	ctx := ctxT(t, 20*time.Second)
	name := "src'2"
	if err := s.ChangeMaster(ctx, ChangeMasterOptions{Channel: name, Host: ipv6.HostPort{Host: "127.0.0.1", Port: c.Servers[0].Port()},
		User: testenv.ReplUser, Password: testenv.ReplPassword}); err != nil {
		t.Fatal(err)
	}
	if err := s.StartReplica(ctx, name); err != nil {
		t.Fatal(err)
	}
	c.Servers[0].Exec(t, "CREATE DATABASE multi")
	pos := probe(t, open(t, c.Servers[0], false, Options{})).GTIDBinlogPos
	ok, err := s.MasterGTIDWait(ctx, pos, 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("wait %s: %v %v", pos, ok, err)
	}
	st := probe(t, s)
	rep, found := st.Replication(name)
	if !found || !rep.IORunning() || rep.ConnectionName != name {
		t.Fatalf("channel %q not found or not running: %+v", name, st.Replications)
	}
	if _, found := st.Replication(""); found {
		t.Error("default connection reported though only a named one exists")
	}
	if err := s.StopReplica(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetReplicaAll(ctx, name); err != nil {
		t.Fatal(err)
	}
	if st := probe(t, s); st.IsReplica() {
		t.Errorf("channel survived RESET SLAVE ALL")
	}
}

func TestMasterGTIDWait(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m := open(t, c.Master(), false, Options{})
	r := open(t, c.Replicas()[0], false, Options{})
	c.Master().Exec(t, "CREATE DATABASE w1")
	pos := probe(t, m).GTIDBinlogPos
	ok, err := r.MasterGTIDWait(ctxT(t, 10*time.Second), pos, 5*time.Second)
	if err != nil || !ok {
		t.Fatalf("wait for %s: reached=%v err=%v", pos, ok, err)
	}
	// A position the master never wrote: times out.
	g, _ := pos.Domain(0)
	future := gtid.List{{Domain: 0, ServerID: 1, Seq: g.Seq + 100}}
	begin := time.Now()
	ok, err = r.MasterGTIDWait(ctxT(t, 10*time.Second), future, 300*time.Millisecond)
	if err != nil || ok {
		t.Fatalf("wait for %s: reached=%v err=%v, want a timeout", future, ok, err)
	}
	if el := time.Since(begin); el < 250*time.Millisecond || el > 5*time.Second {
		t.Errorf("timeout wait took %v", el)
	}
	// The context's deadline shortens the server-side wait.
	begin = time.Now()
	ok, err = r.MasterGTIDWait(ctxT(t, 600*time.Millisecond), future, time.Minute)
	if err != nil || ok {
		t.Fatalf("ctx-bounded wait: reached=%v err=%v", ok, err)
	}
	if el := time.Since(begin); el > 3*time.Second {
		t.Errorf("ctx-bounded wait took %v", el)
	}
	// The empty position is always reached.
	if ok, err := r.MasterGTIDWait(ctxT(t, 5*time.Second), gtid.List{}, time.Second); err != nil || !ok {
		t.Errorf("empty position: %v %v", ok, err)
	}
}

func TestSetReadOnlyAndGTIDSlavePos(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m := open(t, c.Master(), false, Options{})
	ctx := ctxT(t, 20*time.Second)
	if err := m.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !probe(t, m).ReadOnly {
		t.Error("read_only still off")
	}
	if err := m.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	if probe(t, m).ReadOnly {
		t.Error("read_only still on")
	}

	r := open(t, c.Replicas()[0], false, Options{})
	if err := r.StopReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	want := gtid.MustParse("0-1-7,5-9-3")
	if err := r.SetGTIDSlavePos(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := probe(t, r).GTIDSlavePos; !got.Equal(want) {
		t.Errorf("gtid_slave_pos = %s, want %s", got, want)
	}
	if err := r.FlushTablesLocal(ctx); err != nil {
		t.Fatal(err)
	}
	before := probe(t, m).GTIDBinlogPos
	if err := m.FlushTables(ctx); err != nil {
		t.Fatal(err)
	}
	if after := probe(t, m).GTIDBinlogPos; !after.AheadOf(before) {
		t.Errorf("FLUSH TABLES did not write a GTID: %s -> %s", before, after)
	}
	if err := m.FlushBinaryLogs(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestProbeOverIPv6(t *testing.T) {
	c := testenv.StartCluster(t, 2, testenv.ReplicateOverIPv6())
	s := open(t, c.Replicas()[0], true, Options{})
	if s.Addr().String() != "[::1]:"+strconv.Itoa(c.Replicas()[0].Port()) {
		t.Errorf("addr %s", s.Addr())
	}
	st := probe(t, s)
	rep, _ := st.Replication("")
	if rep.MasterHost != "::1" || !rep.IORunning() {
		t.Errorf("replication over IPv6: %+v", rep)
	}
	threads, err := s.Processlist(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ConnectionID(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var mine *Thread
	for i := range threads {
		if threads[i].ID == id {
			mine = &threads[i]
		}
	}
	if mine == nil || !strings.HasPrefix(mine.Host, "::1:") || mine.User != "root" {
		t.Errorf("own thread over IPv6: %+v (all %+v)", mine, threads)
	}
	// A bracketed host works too.
	b, err := Open(ipv6.HostPort{Host: "[::1]", Port: c.Master().Port()}, testenv.RootUser, testenv.RootPassword, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ping(ctxT(t, 5*time.Second)); err != nil {
		t.Errorf("bracketed host: %v", err)
	}
}

func TestKillThread(t *testing.T) {
	c := testenv.StartCluster(t, 1, testenv.Standalone())
	s := open(t, c.Master(), false, Options{})
	victim := c.Master().DB(t)
	conn, err := victim.Conn(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id uint64
	if err := conn.QueryRowContext(ctxT(t, 5*time.Second), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The server shows the thread as Sleep a moment after it sent the answer ("Writing to
	// net" before): wait for it, bounded.
	var threads []Thread
	found := false
	for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if threads, err = s.Processlist(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		found = slices.ContainsFunc(threads, func(th Thread) bool { return th.ID == id && th.Command == "Sleep" })
	}
	if !found {
		t.Fatalf("sleeping connection %d not in processlist %+v", id, threads)
	}
	if err := s.KillThread(ctxT(t, 5*time.Second), id); err != nil {
		t.Fatal(err)
	}
	if err := conn.PingContext(ctxT(t, 5*time.Second)); err == nil {
		t.Error("killed connection still answers")
	}
	// The killed thread leaves the thread list a moment after its socket closes; a KILL in
	// between succeeds. Wait until it is gone (bounded) before the second kill.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		threads, err := s.Processlist(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(threads, func(th Thread) bool { return th.ID == id }) {
			break
		}
	}
	if err := s.KillThread(ctxT(t, 5*time.Second), id); !errors.Is(err, ErrNoSuchThread) {
		t.Errorf("second kill: %v, want ErrNoSuchThread", err)
	}

	// KILL QUERY interrupts a running statement and keeps the connection.
	conn2, err := victim.Conn(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	var id2 uint64
	if err := conn2.QueryRowContext(ctxT(t, 5*time.Second), "SELECT CONNECTION_ID()").Scan(&id2); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var v int
		done <- conn2.QueryRowContext(ctxT(t, 20*time.Second), "SELECT SLEEP(15)").Scan(&v)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		threads, err := s.Processlist(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		running := false
		for _, th := range threads {
			running = running || (th.ID == id2 && strings.Contains(th.Info, "SLEEP"))
		}
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SLEEP never showed in the processlist")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.KillQuery(ctxT(t, 5*time.Second), id2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done: // SLEEP returns 1 when killed, or an interruption error: either way it ended
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY did not interrupt SLEEP(15)")
	}
	if err := conn2.PingContext(ctxT(t, 5*time.Second)); err != nil {
		t.Errorf("connection lost after KILL QUERY: %v", err)
	}
}

func TestProbeFrozenServerTimesOut(t *testing.T) {
	c := testenv.StartCluster(t, 1, testenv.Standalone())
	s := open(t, c.Master(), false, Options{ConnectTimeout: time.Second, ReadTimeout: 30 * time.Second})
	probe(t, s) // warm the pool: the frozen server must also fail on a pooled connection
	c.Master().Stop()
	defer c.Master().Cont()
	for _, name := range []string{"pooled", "fresh"} {
		begin := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := s.Probe(ctx)
		cancel()
		el := time.Since(begin)
		if err == nil {
			t.Fatalf("%s: probe of a SIGSTOPped server succeeded", name)
		}
		if !IsTimeout(err) {
			t.Errorf("%s: probe error %v is not a timeout", name, err)
		}
		if !strings.Contains(err.Error(), c.Master().Addr()) {
			t.Errorf("%s: error %q does not name the server", name, err)
		}
		if el > 2*time.Second {
			t.Errorf("%s: probe took %v with a 500ms deadline", name, el)
		}
	}
	c.Master().Cont()
	if _, err := s.Probe(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("probe after SIGCONT: %v", err)
	}
}

func TestProbeKilledServer(t *testing.T) {
	c := testenv.StartCluster(t, 1, testenv.Standalone())
	s := open(t, c.Master(), false, Options{ConnectTimeout: time.Second})
	probe(t, s)
	c.Master().Kill()
	_, err := s.Probe(ctxT(t, 5*time.Second))
	if err == nil {
		t.Fatal("probe of a killed server succeeded")
	}
	if IsTimeout(err) || IsAccessDenied(err) {
		t.Errorf("killed server: %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("killed server: %v, want connection refused", err)
	}
	c.Master().Restart()
	if _, err := s.Probe(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("probe after restart: %v", err)
	}
}

func TestAccessDeniedAndShutdown(t *testing.T) {
	c := testenv.StartCluster(t, 1, testenv.Standalone())
	bad, err := Open(ipv6.HostPort{Host: "127.0.0.1", Port: c.Master().Port()}, "root", "wrong-Secret", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Ping(ctxT(t, 5*time.Second))
	if !IsAccessDenied(err) {
		t.Errorf("wrong password: %v, want access denied", err)
	}
	if strings.Contains(err.Error(), "wrong-Secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	s := open(t, c.Master(), false, Options{})
	if err := s.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.Master().Running() {
		if time.Now().After(deadline) {
			t.Fatal("server still running 20s after SHUTDOWN")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProbeSemiSync(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m := open(t, c.Master(), false, Options{})
	r := open(t, c.Replicas()[0], false, Options{})
	c.Master().Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled=ON")
	c.Replicas()[0].Exec(t, "SET GLOBAL rpl_semi_sync_slave_enabled=ON")
	ctx := ctxT(t, 20*time.Second)
	// The replica negotiates semi-sync when its IO thread connects.
	if err := r.StopReplicaIOThread(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.StartReplica(ctx, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, rs := probe(t, m), probe(t, r)
		if ms.SemiSyncMasterEnabled && ms.SemiSyncMasterStatus && !ms.SemiSyncSlaveEnabled &&
			rs.SemiSyncSlaveEnabled && rs.SemiSyncSlaveStatus && !rs.SemiSyncMasterEnabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("semi-sync not seen: master %+v replica %+v", ms, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A monitoring user without REPLICATION MASTER ADMIN cannot run SHOW SLAVE HOSTS: the
// probe counts binlog dump threads in the processlist instead.
func TestProbeMonitorUserFallback(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	db := c.Master().DB(t)
	conn, err := db.Conn(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET sql_log_bin=0", "CREATE USER 'mon'@'%' IDENTIFIED BY 'mon-pw'",
		"GRANT PROCESS, SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'mon'@'%'"} {
		if _, err := conn.ExecContext(ctxT(t, 10*time.Second), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := Open(ipv6.HostPort{Host: "127.0.0.1", Port: c.Master().Port()}, "mon", "mon-pw", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 { // the second probe goes straight to the fallback
		st := probe(t, s)
		if st.ConnectedReplicas != 2 {
			t.Errorf("monitor user sees %d connected replicas, want 2", st.ConnectedReplicas)
		}
	}
	if !s.noSlaveHosts {
		t.Error("SHOW SLAVE HOSTS worked without REPLICATION MASTER ADMIN: the fallback was not exercised")
	}
}
