package probefarm_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/probefarm"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

const (
	farmUser     = "monitor"
	farmPassword = "s3cret"
)

func startFarm(t testing.TB, n int, opt probefarm.Options) *probefarm.Farm {
	t.Helper()
	if opt.User == "" {
		opt.User, opt.Password = farmUser, farmPassword
	}
	f, err := probefarm.Start(n, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func openServer(t testing.TB, addr ipv6.HostPort, password string) *mariadb.Server {
	t.Helper()
	s, err := mariadb.Open(addr, farmUser, password, mariadb.Options{ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustGTID(t testing.TB, s string) gtid.List {
	t.Helper()
	l, err := gtid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestProbeAgainstFarm runs the real probe against farm endpoints: a change of the probe's
// SQL that the farm does not know fails here (unknown statement), and so does a change in
// how the probe decodes MariaDB's answers.
func TestProbeAgainstFarm(t *testing.T) {
	f := startFarm(t, 3, probefarm.Options{})
	eps := f.Endpoints()
	master, replica := eps[0], eps[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	st, err := openServer(t, master.Addr, farmPassword).Probe(ctx)
	if err != nil {
		t.Fatalf("probe master: %v (unknown statements %q)", err, f.Unknown())
	}
	pos := mustGTID(t, "0-1-1000")
	if st.Version.Raw != probefarm.DefaultVersion || !st.Version.MariaDB || !st.Version.AtLeast(10, 11, 19) ||
		st.ServerID != 1 || st.DomainID != 0 || st.ReadOnly || !st.LogBin || !st.LogSlaveUpdates ||
		st.BinlogFormat != "ROW" || !st.GTIDStrictMode || st.SemiSyncMasterEnabled || st.SemiSyncSlaveEnabled {
		t.Errorf("master variables: %+v", st)
	}
	if !st.GTIDCurrentPos.Equal(pos) || !st.GTIDBinlogPos.Equal(pos) || len(st.GTIDSlavePos) != 0 {
		t.Errorf("master positions: current %s binlog %s slave %s", st.GTIDCurrentPos, st.GTIDBinlogPos, st.GTIDSlavePos)
	}
	if st.ConnectedReplicas != 2 || st.IsReplica() {
		t.Errorf("master: connected replicas %d, replications %+v", st.ConnectedReplicas, st.Replications)
	}

	st, err = openServer(t, replica.Addr, farmPassword).Probe(ctx)
	if err != nil {
		t.Fatalf("probe replica: %v (unknown statements %q)", err, f.Unknown())
	}
	if st.ServerID != 2 || !st.ReadOnly || st.ConnectedReplicas != 0 || !st.GTIDSlavePos.Equal(pos) || !st.GTIDCurrentPos.Equal(pos) {
		t.Errorf("replica variables: %+v", st)
	}
	r, ok := st.Replication("")
	if !ok || len(st.Replications) != 1 {
		t.Fatalf("replica replications: %+v", st.Replications)
	}
	if r.MasterHost != "127.0.0.1" || r.MasterPort != master.Addr.Port || r.MasterUser != "repl" ||
		!r.IORunning() || !r.SQLRunning() || r.SecondsBehindMaster == nil || *r.SecondsBehindMaster != 0 ||
		r.UsingGtid != "Slave_Pos" || !r.GtidIOPos.Equal(pos) || !r.GtidSlavePos.Equal(pos) ||
		r.MasterServerID != 1 || r.SlaveHeartbeatPeriod != time.Second || r.SQLRemainingDelay != nil ||
		r.ReadMasterLogPos != r.ExecMasterLogPos || r.ParallelMode != "optimistic" || r.LastIOErrno != 0 || r.LastSQLErrno != 0 {
		t.Errorf("replica replication: %+v", r)
	}
	if u := f.Unknown(); len(u) != 0 {
		t.Errorf("the probe sent statements the farm does not know: %q", u)
	}

	// The monitor over the three endpoints sees one healthy master-slave cluster.
	m := cluster.NewMonitor(cluster.MonitorConfig{
		Cluster: "farm", Hosts: f.Addrs(), Ticker: time.Second, ProbeTimeout: time.Second,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
	}, cluster.MariaDBDialer(farmUser, farmPassword, mariadb.Options{ConnectTimeout: time.Second}), nil, nil)
	defer m.Close()
	snap := m.Tick(ctx)
	var states []string
	for _, s := range snap.Servers {
		states = append(states, string(s.State))
		if s.ProbeError != "" {
			t.Errorf("%s: %s", s.Addr, s.ProbeError)
		}
	}
	if got := strings.Join(states, ","); got != "Master,Slave,Slave" {
		t.Fatalf("states %s, want Master,Slave,Slave (problems %+v)", got, snap.Problems)
	}
	if ms, ok := snap.MasterServer(); !ok || ms.Addr != master.Addr || snap.Kind != topology.KindMasterSlave {
		t.Errorf("master %v %v, kind %s", ms.Addr, ok, snap.Kind)
	}
	if len(snap.Problems) != 0 {
		t.Errorf("problems on a healthy farm: %+v", snap.Problems)
	}
	if u := f.Unknown(); len(u) != 0 {
		t.Errorf("the monitor sent statements the farm does not know: %q", u)
	}
}

func TestFarmRejectsUnknownStatementsAndBadPasswords(t *testing.T) {
	f := startFarm(t, 2, probefarm.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := f.Endpoints()[0].Addr

	_, err := openServer(t, addr, "wrong").Probe(ctx)
	if !mariadb.IsAccessDenied(err) {
		t.Errorf("wrong password: %v, want access denied", err)
	}

	db := openServer(t, addr, farmPassword).DB()
	_, err = db.ExecContext(ctx, "FLUSH   TABLES")
	if err == nil || !strings.Contains(err.Error(), "FLUSH   TABLES") {
		t.Errorf("unknown statement: %v, want an error naming it", err)
	}
	if u := f.Unknown(); len(u) != 1 || u[0] != "FLUSH   TABLES" {
		t.Errorf("unknown = %q", u)
	}
	var v string
	if err := db.QueryRowContext(ctx, "select @@nonexistent").Scan(&v); err == nil || !strings.Contains(err.Error(), "1193") {
		t.Errorf("unknown variable: %v, want error 1193", err)
	}
	// Harmless statements pass.
	if _, err := db.ExecContext(ctx, "SET SESSION wait_timeout=10"); err != nil {
		t.Error(err)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Error(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&v); err != nil || v != "1" {
		t.Errorf("SELECT 1: %q %v", v, err)
	}
	// SET GLOBAL read_only changes what the next probe reads.
	s := openServer(t, addr, farmPassword)
	if err := s.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Probe(ctx); err != nil || !st.ReadOnly {
		t.Errorf("after SET GLOBAL read_only=ON: %v %+v", err, st)
	}
}

func TestFarmCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	f, err := probefarm.Start(20, probefarm.Options{User: farmUser, Password: farmPassword, ClusterSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var servers []*mariadb.Server
	for _, a := range f.Addrs() {
		s, err := mariadb.Open(a, farmUser, farmPassword, mariadb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Probe(ctx); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	// Close the farm under open client connections: it must end them itself.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
