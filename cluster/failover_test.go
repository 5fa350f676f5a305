package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// Failover and switchover on real MariaDB servers.

func failoverMonitor(t *testing.T, c *testenv.Cluster, mutate func(*MonitorConfig)) (*Monitor, *eventlog.Log) {
	t.Helper()
	stateDir := t.TempDir()
	return monitorFor(t, c, false, func(mc *MonitorConfig) {
		mc.Ticker = 200 * time.Millisecond
		mc.ProbeTimeout = 200 * time.Millisecond
		mc.MaxFail = 3
		mc.HeartbeatCheck = true
		mc.HeartbeatTimeout = time.Second
		mc.Failover = FailoverConfig{
			Mode: "automatic", Limit: 5,
			Exec: ExecConfig{
				ReplUser: testenv.ReplUser, ReplPassword: testenv.ReplPassword,
				HeartbeatPeriod: time.Second, ConnectRetry: time.Second, ReadOnlyReplicas: true,
				WaitKill: 200 * time.Millisecond, WaitTrx: 5 * time.Second, WaitWriteQuery: 10 * time.Second,
				SlaveWaitCatch: true, StateDir: stateDir, KeepLogs: 5,
			},
		}
		if mutate != nil {
			mutate(mc)
		}
	})
}

// runMonitor runs m.Run until the test ends.
func runMonitor(t *testing.T, m *Monitor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func masterOf(s *topology.Snapshot) string {
	if m, ok := s.MasterServer(); ok {
		return m.Addr.String()
	}
	return ""
}

// waitMaster polls the running monitor's snapshots until the master is not old any more
// and is healthy with every other reachable server replicating from it.
func waitNewMaster(t *testing.T, m *Monitor, old string, within time.Duration) *topology.Snapshot {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s := m.Snapshot()
		if s != nil && masterOf(s) != "" && masterOf(s) != old {
			ms, _ := s.MasterServer()
			if ms.State == topology.StateMaster {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := m.Snapshot()
	t.Fatalf("no new master within %v: master %q states %s problems %s", within, masterOf(s), states(s), codes(s.Problems))
	return nil
}

func serverByAddr(t *testing.T, c *testenv.Cluster, addr string) *testenv.Server {
	t.Helper()
	for _, s := range c.Servers {
		if s.Addr() == addr {
			return s
		}
	}
	t.Fatalf("no test server at %s", addr)
	return nil
}

func createWriterTable(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	c.Master().Exec(t, "CREATE DATABASE IF NOT EXISTS rmp")
	c.Master().Exec(t, "CREATE TABLE IF NOT EXISTS rmp.w (id BIGINT PRIMARY KEY, at DATETIME(6)) ENGINE=InnoDB")
	// The writer is an application account: read_only stops it, as it stops every account
	// without READ_ONLY ADMIN (root has it and would write through read_only).
	c.Master().Exec(t, "CREATE USER IF NOT EXISTS app@'%' IDENTIFIED BY 'app-pw'")
	c.Master().Exec(t, "GRANT SELECT, INSERT ON rmp.* TO app@'%'")
	pos := c.Master().QueryString(t, "SELECT @@gtid_binlog_pos")
	for _, r := range c.Replicas() {
		if got := r.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
			t.Fatalf("replica %s did not catch up: %s", r.Addr(), got)
		}
	}
}

// writer inserts rows every interval into whichever server the monitor names as master and
// remembers every insert the server acknowledged.
type writer struct {
	mu      sync.Mutex
	acked   []int64
	failed  int
	stop    chan struct{}
	done    chan struct{}
	lastOK  time.Time
	maxGap  time.Duration
	targets map[string]*sql.DB
}

func startWriter(t *testing.T, m *Monitor, c *testenv.Cluster, interval time.Duration) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{}), targets: map[string]*sql.DB{}}
	for _, s := range c.Servers {
		w.targets[s.Addr()] = s.DB(t, testenv.WithUser("app", "app-pw"), testenv.WithTimeouts(300*time.Millisecond, 500*time.Millisecond))
	}
	go func() {
		defer close(w.done)
		var id int64
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
			s := m.Snapshot()
			if s == nil {
				continue
			}
			db := w.targets[masterOf(s)]
			if db == nil {
				continue
			}
			id++
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			_, err := db.ExecContext(ctx, "INSERT INTO rmp.w VALUES (?, NOW(6))", id)
			cancel()
			w.mu.Lock()
			if err == nil {
				now := time.Now()
				if !w.lastOK.IsZero() && now.Sub(w.lastOK) > w.maxGap {
					w.maxGap = now.Sub(w.lastOK)
				}
				w.lastOK = now
				w.acked = append(w.acked, id)
			} else {
				w.failed++
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
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

func (w *writer) Acked() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...)
}

func (w *writer) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.Acked()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("writer got only %d acknowledged writes", len(w.Acked()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// missing returns the acknowledged ids absent from the server.
func missing(t *testing.T, s *testenv.Server, acked []int64) []int64 {
	t.Helper()
	db := s.DB(t)
	rows, err := db.Query("SELECT id FROM rmp.w")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		have[id] = true
	}
	var out []int64
	for _, id := range acked {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

func enableSemiSync(t testing.TB, c *testenv.Cluster) {
	t.Helper()
	c.Master().Exec(t, "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC")
	c.Master().Exec(t, "SET GLOBAL rpl_semi_sync_master_timeout = 60000")
	c.Master().Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	for _, r := range c.Replicas() {
		r.Exec(t, "SET GLOBAL rpl_semi_sync_slave_enabled = ON")
		r.Exec(t, "STOP SLAVE IO_THREAD")
		r.Exec(t, "START SLAVE IO_THREAD")
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Master().QueryString(t, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_STATUS'") != "ON" {
		if time.Now().After(deadline) {
			t.Fatal("semi-sync did not become active on the master")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertRepointed checks that every other live server replicates from the new master, with
// healthy threads and read_only set.
func assertRepointed(t *testing.T, c *testenv.Cluster, newMaster string, except ...string) {
	t.Helper()
	skip := map[string]bool{newMaster: true}
	for _, e := range except {
		skip[e] = true
	}
	nm := serverByAddr(t, c, newMaster)
	if ro := nm.QueryString(t, "SELECT @@read_only"); ro != "0" {
		t.Errorf("new master %s read_only = %s", newMaster, ro)
	}
	for _, s := range c.Servers {
		if skip[s.Addr()] {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		want, _ := ipv6.ParseHostPort(newMaster, 3306)
		for {
			st := slaveStatus(t, s)
			src, io, sqlT := st["Master_Host"]+":"+st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"]
			if src == want.Host+":"+fmt.Sprint(want.Port) && io == "Yes" && sqlT == "Yes" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s replicates from %s (IO %s, SQL %s), want %s", s.Addr(), src, io, sqlT, newMaster)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ro := s.QueryString(t, "SELECT @@read_only"); ro != "1" {
			t.Errorf("replica %s read_only = %s", s.Addr(), ro)
		}
	}
}

func slaveStatus(t *testing.T, s *testenv.Server) map[string]string {
	t.Helper()
	rows, err := s.DB(t).Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]string{}
	if rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		for i, c := range cols {
			out[c] = vals[i].String
		}
	}
	return out
}

func eventsWith(events *eventlog.Log, substr string) []eventlog.Event {
	var out []eventlog.Event
	for _, e := range events.Recent("", 0) {
		if strings.Contains(e.Message+" "+e.Error, substr) {
			out = append(out, e)
		}
	}
	return out
}

func TestFailoverKilledMasterSemiSyncLosesNothing(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	enableSemiSync(t, c)
	m, events := failoverMonitor(t, c, nil)
	runMonitor(t, m)
	w := startWriter(t, m, c, 5*time.Millisecond)
	w.waitAcked(t, 50)

	old := c.Master().Addr()
	c.Master().Kill()
	s := waitNewMaster(t, m, old, 15*time.Second)
	w.waitAcked(t, len(w.Acked())+20) // writes flow again, to the new master
	w.Stop()

	newMaster := masterOf(s)
	assertRepointed(t, c, newMaster, old)
	if lost := missing(t, serverByAddr(t, c, newMaster), w.Acked()); len(lost) > 0 {
		t.Fatalf("semi-sync failover lost %d acknowledged writes: %v", len(lost), lost)
	}
	if len(eventsWith(events, "failover from "+old)) == 0 {
		t.Fatalf("no failover event: %+v", events.Recent("", 0))
	}
	steps := 0
	for _, e := range events.Recent("c1", 0) {
		if e.Kind == "failover-step" {
			steps++
			if e.Error != "" {
				t.Errorf("step failed: %+v", e)
			}
		}
	}
	if steps < 4 {
		t.Fatalf("only %d failover-step events", steps)
	}
	if h := m.History(); h.Count != 1 || h.Last.IsZero() {
		t.Fatalf("history %+v", h)
	}
	recs, _ := filepath.Glob(filepath.Join(m.cfg.Failover.Exec.StateDir, "c1", "failover.*.json"))
	if len(recs) != 1 {
		t.Fatalf("crash records: %v", recs)
	}
}

func TestFailoverKilledMasterAsyncReportsLoss(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	m, events := failoverMonitor(t, c, nil)
	runMonitor(t, m)
	w := startWriter(t, m, c, 2*time.Millisecond)
	w.waitAcked(t, 100)
	old := c.Master().Addr()
	c.Master().Kill()
	s := waitNewMaster(t, m, old, 15*time.Second)
	w.waitAcked(t, len(w.Acked())+20)
	w.Stop()
	assertRepointed(t, c, masterOf(s), old)
	lost := missing(t, serverByAddr(t, c, masterOf(s)), w.Acked())
	reported := eventsWith(events, "transactions lost")
	t.Logf("asynchronous failover: %d of %d acknowledged writes lost; %d loss reports at the failover", len(lost), len(w.Acked()), len(reported))
	// The manager reports what it saw of the loss at the failover (the old master's last
	// probed position) and, once the old master is back, everything it holds that the
	// cluster never received: whenever writes were lost, it must have said so.
	c.Master().Restart()
	deadline := time.Now().Add(10 * time.Second)
	var last *topology.Snapshot
	for time.Now().Before(deadline) {
		last = m.Snapshot()
		if hasProblemOn(last, topology.FormerMasterDiverged, old) || hasProblemOn(last, topology.FormerMasterCanRejoin, old) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	diverged := hasProblemOn(last, topology.FormerMasterDiverged, old)
	if len(lost) > 0 && !diverged {
		t.Fatalf("%d acknowledged writes lost, but the returning old master is not reported diverged (problems %s)", len(lost), codes(last.Problems))
	}
	// A loss report with no acknowledged write lost is possible (commits the old master
	// wrote whose clients never heard back), so it is not asserted against.
	if diverged {
		for ro := ""; ro != "1"; time.Sleep(50 * time.Millisecond) {
			if ro = c.Master().QueryString(t, "SELECT @@read_only"); ro != "1" && time.Now().After(deadline.Add(5*time.Second)) {
				t.Fatalf("diverged old master read_only=%s, want 1", ro)
			}
		}
	}
}

func hasProblemOn(s *topology.Snapshot, code topology.Code, server string) bool {
	if s == nil {
		return false
	}
	for _, p := range s.Problems {
		if p.Code == code && p.Server == server {
			return true
		}
	}
	return false
}

func TestFailoverStalledMaster(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := failoverMonitor(t, c, nil)
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	old := c.Master().Addr()
	c.Master().Stop()
	t.Cleanup(c.Master().Cont)
	// The replicas' IO threads stay "Yes" until slave_net_timeout; the heartbeat check sees
	// the silence after failover-falsepositive-heartbeat-timeout (2 heartbeat periods here).
	s := waitNewMaster(t, m, old, 20*time.Second)
	assertRepointed(t, c, masterOf(s), old)
	if len(eventsWith(events, "failover from "+old)) == 0 {
		t.Fatalf("no failover event")
	}
}

func TestErrantReplicaIsNotElected(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	errant := c.Servers[1]
	errant.Exec(t, "SET GLOBAL read_only = 0")
	errant.Exec(t, "CREATE DATABASE errant_on_replica")
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.ReadOnlyReplicas = false })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "errant seen", func(s *topology.Snapshot) bool { return hasProblem(s, topology.ErrantGTID) })
	old := c.Master().Addr()
	c.Master().Kill()
	s := waitNewMaster(t, m, old, 15*time.Second)
	if masterOf(s) != c.Servers[2].Addr() {
		t.Fatalf("elected %s, want %s (the replica without errant GTID)", masterOf(s), c.Servers[2].Addr())
	}
	if len(eventsWith(events, "errant GTID")) == 0 {
		t.Fatalf("no event names the errant GTID: %+v", events.Recent("", 0))
	}
}

func TestLaggingReplicaIsNotElected(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	// db2 applies with a 60 s delay: its lag grows past failover-max-slave-delay.
	lagging := c.Servers[1]
	lagging.Exec(t, "STOP SLAVE")
	lagging.Exec(t, "CHANGE MASTER TO MASTER_DELAY = 60")
	lagging.Exec(t, "START SLAVE")
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.MaxLag = 3 })
	runMonitor(t, m)
	c.Master().Exec(t, "INSERT INTO rmp.w VALUES (1, NOW(6))")
	time.Sleep(1500 * time.Millisecond)
	c.Master().Exec(t, "INSERT INTO rmp.w VALUES (2, NOW(6))")
	waitFor(t, m, 20*time.Second, "lag seen", func(s *topology.Snapshot) bool { return s.Servers[1].State == topology.StateSlaveLate })
	old := c.Master().Addr()
	c.Master().Kill()
	s := waitNewMaster(t, m, old, 15*time.Second)
	if masterOf(s) != c.Servers[2].Addr() {
		t.Fatalf("elected %s, want %s", masterOf(s), c.Servers[2].Addr())
	}
}

func TestFailoverLimitRefusesWithEvent(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Limit = 1 })
	m.setHistory(FailoverHistory{Count: 1, Last: time.Now().Add(-time.Hour)})
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	old := c.Master().Addr()
	c.Master().Kill()
	deadline := time.Now().Add(10 * time.Second)
	for len(eventsWith(events, "failover-limit 1 reached")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal event: %+v", events.Recent("", 0))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if masterOf(m.Snapshot()) != old {
		t.Fatalf("failover happened despite the limit")
	}
	if n := len(eventsWith(events, "failover-limit 1 reached")); n != 1 {
		t.Fatalf("refusal reported %d times, want once", n)
	}
	// Reset, then the failover goes through.
	m.ResetFailoverControl()
	waitNewMaster(t, m, old, 15*time.Second)
}

func TestManualFailoverRefusesLiveMasterAndDryRunPrintsPlan(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Mode = "manual" })
	m.Tick(context.Background())
	// A dry run's refusal is its answer, not an event (the UI asks one each time its dialog opens).
	if _, _, err := m.Act(context.Background(), ActionRequest{Kind: PlanFailover, DryRun: true, Origin: "api"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("dry run of a failover of a live master: %v", err)
	}
	if got := eventsWith(events, "refused"); len(got) != 0 {
		t.Fatalf("a dry run was recorded as a refusal: %+v", got)
	}
	_, _, err := m.Failover(context.Background(), false, false)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "use switchover") {
		t.Fatalf("failover of a live master: %v", err)
	}
	if got := eventsWith(events, "refused"); len(got) != 1 {
		t.Fatalf("the refused failover is not recorded once: %+v", got)
	}
	c.Master().Kill()
	// Until the replicas notice the lost connection (milliseconds), they vouch for the master.
	waitFor(t, m, 5*time.Second, "replicas lost the master", func(s *topology.Snapshot) bool {
		return !hasProblem(s, topology.UnreachableMasterWithHealthyReplicas) && !s.Servers[0].Reachable
	})
	p, res, err := m.Failover(context.Background(), true, false)
	if err != nil || res != nil || p.NewMaster.Host == "" || len(p.Steps) == 0 || len(p.Election.Candidates) != 2 {
		t.Fatalf("dry run: %+v %v %v", p, res, err)
	}
	if masterOf(m.Tick(context.Background())) != c.Master().Addr() {
		t.Fatal("dry run changed the topology")
	}
	p, res, err = m.Failover(context.Background(), false, false)
	if err != nil || res == nil || !res.Promoted {
		t.Fatalf("manual failover: %v %+v", err, res)
	}
	assertRepointed(t, c, p.NewMaster.String(), c.Master().Addr())
}

// startSysbench loads the master with sysbench's oltp_write_only as the application account.
// sysbench ignores lost connections (the switchover kills them) but stops at the first
// read_only refusal: it cannot follow a new master by itself (a proxy does that), and with
// every error ignored it would spin on the demoted master forever. The returned function
// waits for it to end.
func startSysbench(t *testing.T, master *testenv.Server, seconds int) func() {
	t.Helper()
	bin := realtest.LookPath(t, "sysbench", "sysbench")
	master.Exec(t, "CREATE DATABASE IF NOT EXISTS sbtest")
	master.Exec(t, "GRANT ALL ON sbtest.* TO app@'%'")
	args := []string{"oltp_write_only", "--mysql-host=127.0.0.1", fmt.Sprintf("--mysql-port=%d", master.Port()),
		"--mysql-user=app", "--mysql-password=app-pw", "--mysql-db=sbtest", "--tables=2", "--table-size=2000"}
	if out, err := exec.Command(bin, append(args, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	cmd := exec.CommandContext(ctx, bin, append(args, "--threads=2", fmt.Sprintf("--time=%d", seconds),
		"--mysql-ignore-errors=1213,1205,1020,2013,2006,1317,1927", "run")...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() { <-done; cancel() }
	t.Cleanup(func() { cancel(); <-done })
	return stop
}

// seqOf returns the sequence number of domain 0 in a server's binlog position.
func seqOf(t *testing.T, s *testenv.Server) uint64 {
	t.Helper()
	g, _ := gtid.MustParse(s.QueryString(t, "SELECT @@gtid_binlog_pos")).Domain(0)
	return g.Seq
}

// TestSwitchoverPastARowLockWaiter: on the old master, a transaction holds a row lock and
// another write waits for it. read_only waits for that write, which waits for the
// transaction, until innodb_lock_wait_timeout (50 s): it once hung the freeze until its step
// timed out and the switchover was aborted (seen under sysbench in CI). The freeze now ends
// the clients past switchover-wait-kill: the switchover completes, the holder's change is
// rolled back, and neither client got an OK.
func TestSwitchoverPastARowLockWaiter(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	c.Master().Exec(t, "CREATE TABLE rmp.hot (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
	c.Master().Exec(t, "INSERT INTO rmp.hot VALUES (1, 0)")
	c.Master().Exec(t, "GRANT UPDATE ON rmp.* TO app@'%'")
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Mode = "manual" })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })

	ctx := context.Background()
	app := c.Master().DB(t, testenv.WithUser("app", "app-pw"))
	holder, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "UPDATE rmp.hot SET v=1 WHERE id=1"); err != nil {
		t.Fatal(err)
	}
	waiterErr := make(chan error, 1)
	go func() {
		_, err := app.ExecContext(ctx, "UPDATE rmp.hot SET v=2 WHERE id=1")
		waiterErr <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Master().QueryString(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Update%' OR INFO LIKE 'UPDATE rmp.hot SET v=2%'") != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second write is not waiting")
		}
	}
	target, _ := ipv6.ParseHostPort(c.Servers[1].Addr(), 3306)
	if _, res, err := m.Switchover(ctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	if err := <-waiterErr; err == nil {
		t.Fatal("the waiting write got an OK on the frozen old master")
	}
	if _, err := holder.ExecContext(ctx, "COMMIT"); err == nil {
		t.Fatal("the lock holder's COMMIT got an OK after the freeze")
	}
	assertRepointed(t, c, target.String())
	if v := serverByAddr(t, c, target.String()).QueryString(t, "SELECT v FROM rmp.hot WHERE id=1"); v != "0" {
		t.Fatalf("new master has v=%s, want 0: a change that got no OK was kept", v)
	}
	// The switchover is in the crash list (topology/crashes), with its final position.
	crashes, err := m.Crashes()
	if err != nil || len(crashes) != 1 || crashes[0].Kind != PlanSwitchover || crashes[0].NewMaster != target || len(crashes[0].FinalPos) == 0 {
		t.Fatalf("crashes %+v %v", crashes, err)
	}
}

func TestSwitchoverUnderLoadLosesNothing(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Mode = "manual" })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	before := seqOf(t, c.Master())
	sysbench := startSysbench(t, c.Master(), 4)
	time.Sleep(time.Second) // sysbench under way
	if n := seqOf(t, c.Master()) - before; n < 50 {
		t.Fatalf("sysbench committed only %d transactions in a second", n)
	}
	w := startWriter(t, m, c, 5*time.Millisecond)
	w.waitAcked(t, 50)
	old := c.Master().Addr()
	target, _ := ipv6.ParseHostPort(c.Servers[2].Addr(), 3306)
	p, res, err := m.Switchover(context.Background(), &target, false)
	if err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	if p.NewMaster != target {
		t.Fatalf("switched to %s, want %s", p.NewMaster, target)
	}
	w.waitAcked(t, len(w.Acked())+50)
	w.Stop()
	sysbench()
	assertRepointed(t, c, target.String())
	// Every server holds only what the new master holds: nothing was written anywhere else.
	nmPos := serverByAddr(t, c, target.String()).QueryString(t, "SELECT @@gtid_binlog_pos")
	for _, srv := range c.Servers {
		if got := srv.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", nmPos)); srv.Addr() != target.String() && got != "0" {
			t.Fatalf("%s did not catch up with the new master", srv.Addr())
		}
		pos, err := gtid.Parse(srv.QueryString(t, "SELECT @@gtid_current_pos"))
		if err != nil {
			t.Fatal(err)
		}
		if e := gtid.Errant(pos, gtid.MustParse(nmPos)); len(e) > 0 {
			t.Fatalf("errant GTID %s on %s after the switchover (new master at %s)", e, srv.Addr(), nmPos)
		}
	}
	nm := serverByAddr(t, c, target.String())
	if lost := missing(t, nm, w.Acked()); len(lost) > 0 {
		t.Fatalf("switchover lost %d acknowledged writes: %v", len(lost), lost)
	}
	// No errant GTID anywhere: every server's position is contained in the new master's.
	s := m.Tick(context.Background())
	if hasProblem(s, topology.ErrantGTID) || masterOf(s) != target.String() || states(s) != "Slave,Slave,Master" {
		t.Fatalf("after switchover: master %s states %s problems %s", masterOf(s), states(s), codes(s.Problems))
	}
	t.Logf("switchover from %s: writable after %s, done in %s, longest write gap %s", old, res.WritableAfter, res.Duration, w.maxGap)
}

func TestFormerMasterRejoinsAsReplica(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.AutoRejoin = true })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	old := c.Master()
	old.Kill()
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	nm := serverByAddr(t, c, masterOf(s))
	nm.Exec(t, "INSERT INTO rmp.w VALUES (1000, NOW(6))") // written while the old master is away
	old.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s = m.Snapshot()
		if srv, ok := s.Find(mustAddr(old.Addr())); ok && srv.State == topology.StateSlave {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old master did not rejoin: states %s problems %s", states(s), codes(s.Problems))
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertRepointed(t, c, nm.Addr())
	if got := old.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", nm.QueryString(t, "SELECT @@gtid_binlog_pos"))); got != "0" {
		t.Fatalf("rejoined old master did not catch up")
	}
	if got := old.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 1000"); got != "1" {
		t.Fatalf("rejoined old master lacks the row written after the failover")
	}
	if len(eventsWith(events, "FormerMasterCanRejoin")) == 0 {
		t.Fatalf("no rejoin event")
	}
	if h := m.History(); len(h.FormerMasters) != 0 {
		t.Fatalf("former master still pending: %+v", h.FormerMasters)
	}
}

func TestDivergedFormerMasterIsKeptOut(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	saveDir := t.TempDir()
	// mariadb-binlog behind a wrapper that fails the first time: the save is tried again.
	real := realtest.LookPath(t, "mariadb-binlog", "mariadb-client")
	wrapper := filepath.Join(t.TempDir(), "binlog-once-failing")
	marker := wrapper + ".failed"
	os.WriteFile(wrapper, []byte("#!/bin/sh\nif [ ! -e "+marker+" ]; then touch "+marker+"; echo 'first try fails' >&2; exit 1; fi\nexec "+real+" \"$@\"\n"), 0o755)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) {
		mc.AutoRejoin = true
		mc.SaveDiverged = &SaveConfig{Binary: wrapper, User: testenv.RootUser, Password: testenv.RootPassword, Dir: saveDir}
	})
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	// The replicas stop receiving; the master then commits two transactions nobody gets.
	for _, r := range c.Replicas() {
		r.Exec(t, "STOP SLAVE IO_THREAD")
	}
	old := c.Master()
	old.Exec(t, "INSERT INTO rmp.w VALUES (1, NOW(6)), (2, NOW(6))")
	old.Exec(t, "INSERT INTO rmp.w VALUES (3, NOW(6))")
	extra := old.QueryString(t, "SELECT @@gtid_binlog_pos")
	old.Kill()
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	old.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for !hasProblem(m.Snapshot(), topology.FormerMasterDiverged) {
		if time.Now().After(deadline) {
			t.Fatalf("divergence not reported: %s", codes(m.Snapshot().Problems))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a few more ticks: it must stay out
	s = m.Snapshot()
	srv, _ := s.Find(mustAddr(old.Addr()))
	if srv.IsReplica() || srv.State != topology.StateStandAlone {
		t.Fatalf("diverged old master rejoined: %+v", srv)
	}
	if ro := old.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("diverged old master read_only = %s", ro)
	}
	found := false
	for _, p := range s.Problems {
		if p.Code == topology.FormerMasterDiverged && strings.Contains(p.Message, extra) {
			found = true
		}
	}
	if !found {
		t.Fatalf("problem does not list the extra transactions %s: %+v", extra, s.Problems)
	}
	if len(eventsWith(events, "FormerMasterDiverged")) == 0 {
		t.Fatal("no event")
	}
	// The transactions nobody received are saved, replayable, and reported as lost.
	var saved []eventlog.Event
	for deadline := time.Now().Add(15 * time.Second); len(saved) == 0; saved = eventsWith(events, "saved to ") {
		if time.Now().After(deadline) {
			t.Fatalf("diverged transactions not saved: %+v", eventsWith(events, "transactions lost"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if saved[0].Error != "DataLoss" {
		t.Errorf("loss event %+v", saved[0])
	}
	if len(eventsWith(events, "saving them failed, trying again")) != 1 {
		t.Errorf("the failed first try is not reported once: %+v", eventsWith(events, "transactions lost"))
	}
	files, _ := filepath.Glob(filepath.Join(saveDir, "*.sql"))
	if len(files) != 1 {
		t.Fatalf("saved files %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"@1=1", "@1=2", "@1=3"} {
		if !strings.Contains(string(b), row) {
			t.Errorf("saved file lacks row %s:\n%s", row, b)
		}
	}
	if strings.Contains(string(b), "@1=0") || !strings.Contains(saved[0].Message, files[0]) {
		t.Errorf("saved more than the diverged transactions, or the event does not name the file: %s", saved[0].Message)
	}
	if h := m.History(); len(h.FormerMasters) != 1 || h.FormerMasters[0].Saved != files[0] {
		t.Errorf("history %+v", h.FormerMasters)
	}
}

func mustAddr(s string) ipv6.HostPort {
	hp, err := ipv6.ParseHostPort(s, 3306)
	if err != nil {
		panic(err)
	}
	return hp
}

// recordingRouter records the calls the monitor and the executor make through the router
// interface (the real routers are tested against HAProxy and a ProxySQL double in their own
// packages).
type recordingRouter struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingRouter) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recordingRouter) Name() string { return "recorder" }
func (r *recordingRouter) Bootstrap(_ context.Context, s *topology.Snapshot) error {
	r.add("bootstrap " + masterOf(s))
	return nil
}
func (r *recordingRouter) Failover(_ context.Context, o, n ipv6.HostPort) error {
	r.add("failover " + o.String() + " " + n.String())
	return nil
}
func (r *recordingRouter) Maintenance(_ context.Context, a ipv6.HostPort, on bool) error {
	r.add(fmt.Sprintf("maintenance %s %v", a, on))
	return nil
}
func (r *recordingRouter) Reconcile(_ context.Context, s *topology.Snapshot) error {
	r.add("reconcile " + masterOf(s))
	return nil
}
func (r *recordingRouter) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func TestRoutersFollowTheTopology(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	rec := &recordingRouter{}
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Routers = []router.Router{rec} })
	old := c.Master().Addr()
	m.Tick(context.Background())
	m.Tick(context.Background())
	if err := m.SetMaintenance(context.Background(), mustAddr(c.Servers[1].Addr()), true); err != nil {
		t.Fatal(err)
	}
	if s := m.Tick(context.Background()); s.Servers[1].State != topology.StateMaintenance {
		t.Fatalf("maintenance not in the snapshot: %s", states(s))
	}
	m.SetMaintenance(context.Background(), mustAddr(c.Servers[1].Addr()), false)
	target := mustAddr(c.Servers[2].Addr())
	if _, _, err := m.Switchover(context.Background(), &target, false); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.Calls(), "\n")
	want := []string{
		"bootstrap " + old,
		"reconcile " + old,
		"maintenance " + c.Servers[1].Addr() + " true",
		"maintenance " + c.Servers[1].Addr() + " false",
		"failover " + old + " " + target.String(),
		"reconcile " + target.String(),
	}
	last := 0
	for _, w := range want {
		i := strings.Index(got[last:], w)
		if i < 0 {
			t.Fatalf("calls lack %q after position %d:\n%s", w, last, got)
		}
		last += i + len(w)
	}
}

// A manager that dies right after promoting the new master (before repointing anyone) is
// replaced by a new one: it re-derives the state from a fresh snapshot and its history,
// keeps the promoted server as master and repoints the replica left on the dead master.
func TestRestartAfterPromotionFinishesTheFailover(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	stateDir := t.TempDir()
	withState := func(mc *MonitorConfig) { mc.AutoRejoin = true; mc.Failover.Exec.StateDir = stateDir }
	first, _ := failoverMonitor(t, c, withState)
	first.Tick(context.Background())
	old := c.Master().Addr()
	c.Master().Kill()
	waitFor(t, first, 10*time.Second, "dead master", func(s *topology.Snapshot) bool { return hasProblem(s, topology.DeadMaster) })
	// Run the failover plan only up to the promotion: the manager "dies" there.
	first.tickMu.Lock()
	snap := first.tickLocked(context.Background())
	p := DecideFailover(snap, first.History(), first.planOptions(true, false))
	if p.Refused != "" {
		first.tickMu.Unlock()
		t.Fatalf("refused: %s", p.Refused)
	}
	var upTo []Step
	for _, st := range p.Steps {
		upTo = append(upTo, st)
		if st.Kind == StepPromote {
			break
		}
	}
	p.Steps = upTo
	res := first.executor().Run(context.Background(), p)
	first.tickMu.Unlock()
	first.Close()
	if !res.Promoted {
		t.Fatalf("not promoted: %+v", res)
	}
	// A new manager on the same state directory.
	second, _ := failoverMonitor(t, c, withState)
	runMonitor(t, second)
	s := waitNewMaster(t, second, old, 15*time.Second)
	if masterOf(s) != p.NewMaster.String() {
		t.Fatalf("master %s, want the promoted %s", masterOf(s), p.NewMaster)
	}
	assertRepointed(t, c, p.NewMaster.String(), old)
	if h := second.History(); h.Count != 1 || len(h.FormerMasters) != 1 {
		t.Fatalf("history %+v", h)
	}
}
