package cluster

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// Crash safety on real MariaDB: a manager process runs a plan and dies right after its k-th
// step (CrashAfterStep, an immediate exit like kill -9); a new manager on the same state
// directory must, within 5 s of its start, leave exactly one writable master with every
// other live server replicating from it, lose no acknowledged write, and say in the event
// log what it resumed or rolled back. The manager runs in a child process (this test binary
// re-executed), since the crash ends the whole process.

const crashChildEnv = "RMP_CRASH_CHILD"

// crashChild is what the parent tells a child manager.
type crashChild struct {
	Hosts      []string `json:"hosts"`
	StateDir   string   `json:"stateDir"`
	EventsFile string   `json:"eventsFile"`
	Action     string   `json:"action"` // "failover" (automatic, the parent kills the master), "switchover", "bootstrap", "rejoin", "" (only monitor)
	CrashAfter int      `json:"crashAfter"`
}

// TestCrashChildProcess is the child manager; it does nothing in a normal test run.
func TestCrashChildProcess(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		return
	}
	var cc crashChild
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatal(err)
	}
	var hosts []ipv6.HostPort
	for _, h := range cc.Hosts {
		hp, err := ipv6.ParseHostPort(h, 3306)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, hp)
	}
	cfg := MonitorConfig{
		Cluster: "c1", Hosts: hosts, Ticker: 200 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true, AutoRejoin: true,
		HeartbeatCheck: true, HeartbeatTimeout: time.Second,
		Failover: FailoverConfig{
			Mode: "automatic", Limit: 5,
			Exec: ExecConfig{
				ReplUser: testenv.ReplUser, ReplPassword: testenv.ReplPassword,
				HeartbeatPeriod: time.Second, ConnectRetry: time.Second, ReadOnlyReplicas: true,
				WaitKill: 200 * time.Millisecond, WaitTrx: 5 * time.Second, WaitWriteQuery: 10 * time.Second,
				SlaveWaitCatch: true, StateDir: cc.StateDir, KeepLogs: 5, CrashAfterStep: cc.CrashAfter,
			},
		},
	}
	events, err := eventlog.Open(cc.EventsFile, 1000)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(os.Stdout) // shown by the parent when a check fails
	m := NewMonitor(cfg, MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), events, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	// READY once the monitor published a snapshot after any resume.
	for m.Snapshot() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("READY")
	var actErr error
	switch cc.Action {
	case "switchover":
		_, _, actErr = m.Act(ctx, ActionRequest{Kind: PlanSwitchover, Origin: "cli"})
	case "bootstrap":
		_, _, actErr = m.Act(ctx, ActionRequest{Kind: PlanBootstrap, Origin: "cli"})
	case "failover":
		// The monitor fails over by itself once the parent killed the master.
		for m.History().Count == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		actErr = m.waitIdle(ctx)
	case "rejoin":
		for len(m.History().FormerMasters) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		actErr = m.waitIdle(ctx)
	default:
		select {} // a resuming manager runs until the parent kills it
	}
	if actErr != nil {
		fmt.Println("ACTION ERROR", actErr)
		os.Exit(3)
	}
	fmt.Println("DONE")
	os.Exit(0)
}

// waitIdle waits until no action runs and no plan is journaled.
func (m *Monitor) waitIdle(ctx context.Context) error {
	for ctx.Err() == nil {
		_, busy := m.Running()
		_, pending, err := m.journal.Load()
		if err != nil {
			return err
		}
		if !busy && !pending {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// childProc is a running child manager.
type childProc struct {
	cmd   *exec.Cmd
	ready chan struct{}
	mu    sync.Mutex
	out   strings.Builder
	done  chan struct{}
	code  int
}

func startChild(t *testing.T, cc crashChild) *childProc {
	t.Helper()
	b, _ := json.Marshal(cc)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(b))
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &childProc{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if line == "READY" {
				once.Do(func() { close(p.ready) })
			}
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *childProc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *childProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *childProc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("child manager exited before READY (%d): %s", p.code, p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("child manager not ready: %s", p.output())
	}
}

// waitExit returns the child's exit code: CrashExitCode when it died after the step.
func (p *childProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("child manager still running after %s: %s", within, p.output())
	}
	return -1
}

// healthy checks the cluster through SQL: exactly one writable live server, every other
// live server replicating from it with both threads running.
func healthy(c *testenv.Cluster, live []*testenv.Server) (*testenv.Server, error) {
	var master *testenv.Server
	for _, s := range live {
		ro, err := queryString(s, "SELECT @@read_only")
		if err != nil {
			return nil, err
		}
		if ro == "0" {
			if master != nil {
				return nil, fmt.Errorf("two writable servers: %s and %s", master.Addr(), s.Addr())
			}
			master = s
		}
	}
	if master == nil {
		return nil, errors.New("no writable server")
	}
	for _, s := range live {
		if s == master {
			continue
		}
		st, err := slaveStatusOf(s)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, fmt.Errorf("%s does not replicate", s.Addr())
		}
		src := st["Master_Host"] + ":" + st["Master_Port"]
		if st["Master_Port"] != strconv.Itoa(master.Port()) || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			return nil, fmt.Errorf("%s replicates from %s (IO %s, SQL %s), want %s running", s.Addr(), src, st["Slave_IO_Running"], st["Slave_SQL_Running"], master.Addr())
		}
	}
	return master, nil
}

func queryString(s *testenv.Server, q string) (string, error) {
	db, err := sqlOpen(s)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var v string
	err = db.QueryRowContext(ctx, q).Scan(&v)
	return v, err
}

func slaveStatusOf(s *testenv.Server) (map[string]string, error) {
	db, err := sqlOpen(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]any, len(cols))
	raw := make([]*string, len(cols))
	for i := range vals {
		vals[i] = &raw[i]
	}
	if err := rows.Scan(vals...); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, c := range cols {
		if raw[i] != nil {
			out[c] = *raw[i]
		}
	}
	return out, nil
}

var (
	sqlMu  sync.Mutex
	sqlDBs = map[string]*mariadb.Server{}
)

// sqlOpen keeps one root handle per server for the checks (a *testing.T is not at hand in
// the polling loop).
func sqlOpen(s *testenv.Server) (*sql.DB, error) {
	sqlMu.Lock()
	defer sqlMu.Unlock()
	if h, ok := sqlDBs[s.Addr()]; ok {
		return h.DB(), nil
	}
	hp, err := ipv6.ParseHostPort(s.Addr(), 3306)
	if err != nil {
		return nil, err
	}
	h, err := mariadb.Open(hp, testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	sqlDBs[s.Addr()] = h
	return h.DB(), nil
}

// closeHandles closes the check handles of a cluster's servers once it is gone.
func closeHandles(c *testenv.Cluster) {
	sqlMu.Lock()
	defer sqlMu.Unlock()
	for _, s := range c.Servers {
		if h, ok := sqlDBs[s.Addr()]; ok {
			h.Close()
			delete(sqlDBs, s.Addr())
		}
	}
}

// ackedRows writes n rows through the application account on the master and waits until
// every replica applied them: acknowledged and replicated, so no failover may lose them.
func ackedRows(t *testing.T, c *testenv.Cluster, from, n int) []int64 {
	t.Helper()
	db := c.Master().DB(t, testenv.WithUser("app", "app-pw"))
	var ids []int64
	for i := from; i < from+n; i++ {
		if _, err := db.Exec("INSERT INTO rmp.w VALUES (?, NOW(6))", i); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int64(i))
	}
	pos := c.Master().QueryString(t, "SELECT @@gtid_binlog_pos")
	for _, r := range c.Replicas() {
		if got := r.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
			t.Fatalf("replica %s did not catch up: %s", r.Addr(), got)
		}
	}
	return ids
}

// crashScenario runs one kind of plan, crashing after step k, then checks the recovery.
type crashScenario struct {
	action string
	// setup prepares the cluster (and may run a first manager); it returns the servers that
	// stay alive and the rows acknowledged before the plan.
	setup func(t *testing.T, c *testenv.Cluster, cc crashChild) (live []*testenv.Server, acked []int64)
	// trigger runs once the crashing child is ready (the failover kills the master).
	trigger func(t *testing.T, c *testenv.Cluster)
	opts    []testenv.Option
}

func TestCrashDuringPlansIsRepairedOnRestart(t *testing.T) {
	all := func(c *testenv.Cluster) []*testenv.Server { return c.Servers }
	withRows := func(t *testing.T, c *testenv.Cluster, _ crashChild) ([]*testenv.Server, []int64) {
		createWriterTable(t, c)
		return all(c), ackedRows(t, c, 1, 20)
	}
	scenarios := []crashScenario{
		{action: "switchover", setup: withRows},
		{action: "failover",
			setup: func(t *testing.T, c *testenv.Cluster, cc crashChild) ([]*testenv.Server, []int64) {
				_, acked := withRows(t, c, cc)
				return c.Replicas(), acked
			},
			trigger: func(t *testing.T, c *testenv.Cluster) { c.Master().Kill() }},
		{action: "bootstrap", opts: []testenv.Option{testenv.Standalone()},
			setup: func(t *testing.T, c *testenv.Cluster, _ crashChild) ([]*testenv.Server, []int64) { return all(c), nil }},
		{action: "rejoin",
			setup: func(t *testing.T, c *testenv.Cluster, cc crashChild) ([]*testenv.Server, []int64) {
				_, acked := withRows(t, c, cc)
				// A first manager fails over the killed master completely...
				first := startChild(t, crashChild{Hosts: cc.Hosts, StateDir: cc.StateDir, EventsFile: cc.EventsFile, Action: "failover"})
				first.waitReady(t)
				c.Master().Kill()
				if code := first.waitExit(t, 30*time.Second); code != 0 {
					t.Fatalf("first failover: exit %d: %s", code, first.output())
				}
				// ...and the old master comes back, waiting to rejoin.
				c.Master().Restart()
				return all(c), acked
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.action, func(t *testing.T) {
			for k := 1; ; k++ {
				if !crashAt(t, sc, k) {
					if k == 1 {
						t.Fatalf("%s: the plan finished without reaching step 1", sc.action)
					}
					t.Logf("%s: crashed and recovered after each of its %d steps", sc.action, k-1)
					return
				}
			}
		})
	}
}

// crashAt runs a scenario crashing after step k; false when the plan has fewer steps.
func crashAt(t *testing.T, sc crashScenario, k int) bool {
	t.Helper()
	c := testenv.StartCluster(t, 3, sc.opts...)
	defer c.Close()
	defer closeHandles(c)
	dir := t.TempDir()
	cc := crashChild{StateDir: dir, EventsFile: filepath.Join(dir, "events.jsonl")}
	for _, s := range c.Servers {
		cc.Hosts = append(cc.Hosts, s.Addr())
	}
	live, acked := sc.setup(t, c, cc)
	cc.Action, cc.CrashAfter = sc.action, k
	child := startChild(t, cc)
	if sc.trigger != nil {
		child.waitReady(t)
		sc.trigger(t, c)
	}
	code := child.waitExit(t, 60*time.Second)
	if code == 0 {
		return false
	}
	if code != CrashExitCode {
		t.Fatalf("step %d: child exit %d, want the crash (%d): %s", k, code, CrashExitCode, child.output())
	}
	// A new manager on the same state directory.
	start := time.Now()
	resumer := startChild(t, crashChild{Hosts: cc.Hosts, StateDir: dir, EventsFile: cc.EventsFile})
	var master *testenv.Server
	var err error
	for time.Since(start) < 5*time.Second {
		if master, err = healthy(c, live); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s crashed after step %d: not repaired 5 s after the restart: %v\nresumer: %s\nevents:\n%s", sc.action, k, err, resumer.output(), readEvents(cc.EventsFile))
	}
	took := time.Since(start)
	if len(acked) > 0 {
		if lost := missing(t, master, acked); len(lost) > 0 {
			t.Fatalf("%s crashed after step %d: %d acknowledged writes lost on %s: %v", sc.action, k, len(lost), master.Addr(), lost)
		}
	}
	// The journal is gone and the event log says what the new manager did.
	waitGone(t, filepath.Join(dir, "c1", "plan-journal.json"), resumer)
	ev := readEvents(cc.EventsFile)
	if !strings.Contains(ev, "resum") && !strings.Contains(ev, "rolled back") && !strings.Contains(ev, "rolling back") {
		t.Fatalf("%s crashed after step %d: no resume or rollback in the event log:\n%s", sc.action, k, ev)
	}
	t.Logf("%s crashed after step %d: repaired in %s, master %s", sc.action, k, took.Round(time.Millisecond), master.Addr())
	resumer.kill()
	return true
}

func waitGone(t *testing.T, path string, p *childProc) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("plan journal still there: %s\nmanager: %s", b, p.output())
}

func readEvents(path string) string {
	b, _ := os.ReadFile(path)
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		var e eventlog.Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind != "state" {
			fmt.Fprintf(&out, "%s %s %s %s\n", e.Kind, e.Server, e.Message, e.Error)
		}
	}
	return out.String()
}
