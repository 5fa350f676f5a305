package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// A master that is cut off or frozen, not killed, on servers with MariaDB's own replication
// timing (slave_net_timeout 60 s, a heartbeat every 30 s): the manager gives the replicas
// the heartbeat it needs, fails over in about a second, fences the old master when it comes
// back, and never fails over a master that is only slow or that only the manager lost.

// cutoffMonitor is failoverMonitor with the heartbeat a 0.2 s ticker derives
// (force-slave-heartbeat: a 0.2 s period, 0.6 s of silence) and the ping counter 2.
func cutoffMonitor(t *testing.T, c *testenv.Cluster, mutate func(*MonitorConfig)) (*Monitor, *eventlog.Log) {
	t.Helper()
	return failoverMonitor(t, c, func(mc *MonitorConfig) {
		mc.MaxFail = 2
		mc.HeartbeatPeriod = 200 * time.Millisecond
		mc.HeartbeatTimeout = 600 * time.Millisecond
		mc.Failover.Exec.HeartbeatPeriod = 200 * time.Millisecond
		mc.AutoRejoin = true
		if mutate != nil {
			mutate(mc)
		}
	})
}

// heartbeatPeriods returns each replica's Slave_heartbeat_period as MariaDB shows it.
func heartbeatPeriods(t *testing.T, c *testenv.Cluster) []string {
	t.Helper()
	var out []string
	for _, r := range c.Replicas() {
		rows, err := r.DB(t).Query("SHOW ALL SLAVES STATUS")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for i, c := range cols {
				if strings.EqualFold(c, "Slave_heartbeat_period") {
					out = append(out, vals[i].String)
				}
			}
		}
		rows.Close()
	}
	return out
}

// waitHeartbeats waits until the monitor set every replica's heartbeat period and the
// cluster is healthy.
func waitHeartbeats(t *testing.T, m *Monitor, c *testenv.Cluster, states string) {
	t.Helper()
	waitFor(t, m, 15*time.Second, "heartbeat periods set", func(s *topology.Snapshot) bool {
		if statesOf(s) != states || hasProblem(s, topology.SlowHeartbeat) {
			return false
		}
		for _, srv := range s.Servers {
			for _, r := range srv.Replications {
				if !r.Healthy() || r.HeartbeatPeriod < 0.199 || r.HeartbeatPeriod > 0.201 {
					return false
				}
			}
		}
		return true
	})
	for _, p := range heartbeatPeriods(t, c) {
		if p != "0.200" && p != "0.2" {
			t.Fatalf("replica heartbeat periods %v, want 0.2 each", heartbeatPeriods(t, c))
		}
	}
}

func statesOf(s *topology.Snapshot) string {
	if s == nil {
		return ""
	}
	return states(s)
}

// writablePoller tries, every 10 ms, one INSERT on every server as the application (a
// 100 ms timeout: a write that waits for a semi-sync acknowledgement is not acknowledged)
// and records every round in which two servers acknowledged one. It also notes how long
// each server kept answering read_only=0.
type writablePoller struct {
	mu       sync.Mutex
	both     []string
	rounds   int
	lastRW   map[string]time.Time // last time a server answered read_only=0
	firstRun time.Time
	done     chan struct{}
}

func pollWritable(t *testing.T, c *testenv.Cluster, d time.Duration, firstID int64) *writablePoller {
	t.Helper()
	p := &writablePoller{done: make(chan struct{}), lastRW: map[string]time.Time{}, firstRun: time.Now()}
	dbs := make([]*sql.DB, len(c.Servers))
	for i, s := range c.Servers {
		dbs[i] = s.DB(t, testenv.WithUser("app", "app-pw"), testenv.WithTimeouts(100*time.Millisecond, 100*time.Millisecond))
	}
	go func() {
		defer close(p.done)
		id := firstID
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			var acked []string
			for i, db := range dbs {
				addr := c.Servers[i].Addr()
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				var ro string
				if db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro) == nil && ro == "0" {
					p.mu.Lock()
					p.lastRW[addr] = time.Now()
					p.mu.Unlock()
				}
				id++
				if _, err := db.ExecContext(ctx, "INSERT INTO rmp.w VALUES (?, NOW(6))", id); err == nil {
					acked = append(acked, addr)
				}
				cancel()
			}
			p.mu.Lock()
			p.rounds++
			if len(acked) > 1 {
				p.both = append(p.both, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), acked))
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *writablePoller) wait() (both []string, rounds int, lastRW map[string]time.Time) {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.both, p.rounds, p.lastRW
}

// freezeWithDirectWrite opens an application connection to old (not through a proxy),
// freezes old (SIGSTOP: the TCP connections stay up, nothing answers; resumed at the end of
// the test at the latest) and sends an INSERT of id on that connection while it is frozen.
// The channel gets what the client sees of it.
func freezeWithDirectWrite(t *testing.T, old *testenv.Server, id int) <-chan error {
	t.Helper()
	direct := old.DB(t, testenv.WithUser("app", "app-pw"), testenv.WithTimeouts(time.Second, 30*time.Second))
	dconn, err := direct.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dconn.Close() })
	old.Stop()
	t.Cleanup(old.Cont)
	directErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		// One text statement (no placeholder: a prepared one would wait for the resume to
		// be prepared, and arrive after the fence), in the server's socket while it is frozen.
		_, err := dconn.ExecContext(ctx, fmt.Sprintf("INSERT INTO rmp.w VALUES (%d, NOW(6))", id))
		directErr <- err
	}()
	return directErr
}

func TestFrozenMasterOnDefaultSettingsFailsOverAndIsFenced(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicationDefaults())
	createWriterTable(t, c)
	enableSemiSync(t, c)
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	if len(eventsWith(events, "set-heartbeat")) == 0 {
		t.Errorf("no event tells the heartbeat was set: %+v", events.Recent("", 0))
	}

	w := startWriter(t, m, c, 5*time.Millisecond)
	w.waitAcked(t, 50)
	// A client connected to the master directly (not through a proxy), whose INSERT
	// reaches the master while it is frozen.
	old := c.Master()
	directErr := freezeWithDirectWrite(t, old, 999999)

	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	w.waitAcked(t, len(w.Acked())+20)
	newMaster := serverByAddr(t, c, masterOf(s))
	assertRepointed(t, c, newMaster.Addr(), old.Addr())

	resumed := time.Now()
	old.Cont()
	poll := pollWritable(t, c, 5*time.Second, 5_000_000)
	both, rounds, lastRW := poll.wait()
	if len(both) > 0 {
		t.Errorf("two servers acknowledged writes after the frozen master resumed (%d of %d rounds): %v", len(both), rounds, both)
	}
	// read_only may read OFF for a moment: the queued fence ends the connections whose
	// commits were in flight at the resume, then waits for those commits to let go before
	// read_only=ON takes effect. It must not last beyond the manager's next ticks.
	if at, ok := lastRW[old.Addr()]; ok {
		t.Logf("old master answered read_only=0 until %v after its resume", at.Sub(resumed).Round(time.Millisecond))
		if at.Sub(resumed) > time.Second {
			t.Errorf("old master still read_only=0 %v after its resume", at.Sub(resumed))
		}
	}
	if testing.Verbose() {
		for _, e := range events.Recent("", 0) {
			if e.Kind == "failover-step" || e.Kind == "enforce" || e.Kind == "state" {
				t.Logf("%s %-14s %s %s %s", e.Time.Format("15:04:05.000"), e.Kind, e.Server, e.Message, e.Error)
			}
		}
	}
	w.Stop()
	select {
	case err := <-directErr:
		if err == nil {
			t.Errorf("the INSERT sent to the frozen master was acknowledged after the failover (semi-sync)")
		} else {
			t.Logf("INSERT sent to the frozen master: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the direct client never got an answer")
	}
	if got := newMaster.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 999999"); got != "0" {
		t.Errorf("the frozen master's INSERT reached the new master")
	}
	if lost := missing(t, newMaster, w.Acked()); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost: %v", len(lost), lost)
	}
	if ro := old.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Errorf("resumed old master read_only = %s", ro)
	}
	if len(eventsWith(events, "fence: ")) == 0 {
		t.Errorf("no event tells the old master was fenced: %+v", events.Recent("", 0))
	}
}

func TestFrozenMasterWithoutSemiSyncSavesWhatItAcknowledged(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicationDefaults())
	createWriterTable(t, c)
	saveDir := t.TempDir()
	m, events := cutoffMonitor(t, c, func(mc *MonitorConfig) {
		mc.SaveDiverged = &SaveConfig{User: testenv.RootUser, Password: testenv.RootPassword, Dir: saveDir}
	})
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	old := c.Master()
	directErr := freezeWithDirectWrite(t, old, 777777)
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	old.Cont()
	var acked bool
	select {
	case err := <-directErr:
		acked = err == nil
		t.Logf("INSERT sent to the frozen master: acknowledged %v (%v)", acked, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the direct client never got an answer")
	}
	if !acked {
		// The queued fence ran first: the write was refused, nothing was lost.
		if got := old.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 777777"); got != "0" {
			t.Fatalf("refused INSERT is on the old master")
		}
		return
	}
	// Acknowledged on the old master only: it must be saved and reported, not dropped.
	if got := serverByAddr(t, c, masterOf(s)).QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 777777"); got != "0" {
		t.Fatalf("the frozen master's write reached the new master")
	}
	var saved []eventlog.Event
	for deadline := time.Now().Add(15 * time.Second); len(saved) == 0; saved = eventsWith(events, "saved to ") {
		if time.Now().After(deadline) {
			t.Fatalf("the acknowledged write was not saved: problems %s", codes(m.Snapshot().Problems))
		}
		time.Sleep(50 * time.Millisecond)
	}
	files, _ := filepath.Glob(filepath.Join(saveDir, "*.sql"))
	if len(files) != 1 {
		t.Fatalf("saved files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "@1=777777") {
		t.Fatalf("saved file lacks the acknowledged write:\n%s", b)
	}
}

// startSysbenchLoad runs a read-write sysbench with threads threads on the master.
func startSysbenchLoad(t *testing.T, master *testenv.Server, seconds, threads int) func() {
	t.Helper()
	bin := realtest.LookPath(t, "sysbench", "sysbench")
	master.Exec(t, "CREATE DATABASE IF NOT EXISTS sbtest")
	master.Exec(t, "GRANT ALL ON sbtest.* TO app@'%'")
	args := []string{"oltp_read_write", "--mysql-host=127.0.0.1", fmt.Sprintf("--mysql-port=%d", master.Port()),
		"--mysql-user=app", "--mysql-password=app-pw", "--mysql-db=sbtest", "--tables=4", "--table-size=5000"}
	if out, err := exec.Command(bin, append(args, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	cmd := exec.CommandContext(ctx, bin, append(args, fmt.Sprintf("--threads=%d", threads), fmt.Sprintf("--time=%d", seconds),
		"--mysql-ignore-errors=1213,1205,1020", "run")...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { <-done; cancel() }
}

// noFailoverFor watches the monitor for d and fails the test if the master changes.
func noFailoverFor(t *testing.T, m *Monitor, master string, d time.Duration) *topology.Snapshot {
	t.Helper()
	var last *topology.Snapshot
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		last = m.Snapshot()
		if got := masterOf(last); got != master {
			t.Fatalf("failover happened: master now %q (problems %s)", got, codes(last.Problems))
		}
	}
	return last
}

func TestNoFailoverOfASaturatedMaster(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicationDefaults())
	createWriterTable(t, c) // the application account sysbench uses
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	before := seqOf(t, c.Master())
	wait := startSysbenchLoad(t, c.Master(), 30, 2*runtime.NumCPU())
	noFailoverFor(t, m, c.Master().Addr(), 30*time.Second)
	wait()
	// The load was real: thousands of commits, and the probes felt it.
	commits := seqOf(t, c.Master()) - before
	suspect := len(eventsWith(events, "Suspect"))
	t.Logf("%d commits under %d sysbench threads; %d suspect probes", commits, 2*runtime.NumCPU(), suspect)
	if commits < 1000 {
		t.Fatalf("only %d commits: the master was not loaded", commits)
	}
	if got := eventsWith(events, "starting failover"); len(got) > 0 {
		t.Fatalf("a failover started: %+v", got)
	}
}

// The fence runs whole on the frozen master the moment it resumes, without the manager: a
// write its client sent during the freeze is refused even when nobody isolates the old
// master afterwards (here the manager is gone by then). A plain queued read_only would wait
// for that write's semi-sync acknowledgement until rpl_semi_sync_master_timeout, which then
// acknowledges it: a write on no other server.
func TestFrozenMasterFencesItselfWhenTheManagerIsGone(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicationDefaults())
	createWriterTable(t, c)
	enableSemiSync(t, c)
	old := c.Master()
	old.Exec(t, "SET GLOBAL rpl_semi_sync_master_timeout = 3000")
	m, _ := cutoffMonitor(t, c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			m.Close()
		}
	}
	t.Cleanup(stop)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")

	directErr := freezeWithDirectWrite(t, old, 424242)
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	newMaster := serverByAddr(t, c, masterOf(s))
	stop() // nobody will isolate the old master when it resumes
	old.Cont()
	select {
	case err := <-directErr:
		if err == nil {
			t.Fatal("the write sent to the frozen master was acknowledged after its resume")
		}
		t.Logf("write sent to the frozen master: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the direct client never got an answer")
	}
	resumed := time.Now()
	for old.QueryString(t, "SELECT @@GLOBAL.read_only") != "1" {
		if time.Since(resumed) > 5*time.Second {
			t.Fatalf("resumed old master still read_only=0 after 5 s:\n%s", old.ErrorLog())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("read_only=1 %v after the client's error", time.Since(resumed).Round(time.Millisecond))
	if got := newMaster.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 424242"); got != "0" {
		t.Fatal("the frozen master's write reached the new master")
	}
}
