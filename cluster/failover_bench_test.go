package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	stdlog "log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// Benchmarks of failover and switchover on real MariaDB servers (internal/testenv). Their
// run time is fixed (10 kills, 10 switchovers) whatever b.N. The figures and how to read
// them are in docs/benchmarks.md. Set RMP_BENCH_TRACE=1 to log each run's timeline (the
// monitor's events relative to the kill or the switchover's start).

// benchFailoverMonitor is failoverMonitor for benchmarks (testing.TB), with every
// false-positive check on: heartbeat check, ping counter 3, a 0.2 s ticker.
func benchFailoverMonitor(tb testing.TB, c *testenv.Cluster, mode string) (*Monitor, *eventlog.Log) {
	tb.Helper()
	var hosts []ipv6.HostPort
	for _, s := range c.Servers {
		hp, err := ipv6.ParseHostPort(s.Addr(), 3306)
		if err != nil {
			tb.Fatal(err)
		}
		hosts = append(hosts, hp)
	}
	dir := tb.TempDir()
	events, err := eventlog.Open(filepath.Join(dir, "events.jsonl"), 1000)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { events.Close() })
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := MonitorConfig{
		Cluster: "bench", Hosts: hosts, Ticker: 200 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
		HeartbeatCheck: true, HeartbeatTimeout: time.Second,
		Failover: FailoverConfig{
			Mode: mode, Limit: 0,
			Exec: ExecConfig{
				ReplUser: testenv.ReplUser, ReplPassword: testenv.ReplPassword,
				HeartbeatPeriod: time.Second, ConnectRetry: time.Second, ReadOnlyReplicas: true,
				WaitKill: 200 * time.Millisecond, WaitTrx: 5 * time.Second, WaitWriteQuery: 10 * time.Second,
				SlaveWaitCatch: true, StateDir: filepath.Join(dir, "state"), KeepLogs: 5,
			},
		},
	}
	m := NewMonitor(cfg, MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), events, log)
	return m, events
}

// benchWaitHealthy waits until the running monitor's snapshot satisfies ok.
func benchWaitHealthy(tb testing.TB, m *Monitor, run int, within time.Duration, ok func(*topology.Snapshot) bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for s := m.Snapshot(); s == nil || !ok(s); s = m.Snapshot() {
		if time.Now().After(deadline) {
			tb.Fatalf("run %d: cluster not healthy: states %s problems %s", run, statesOf(s), codesOf(s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func codesOf(s *topology.Snapshot) string {
	if s == nil {
		return ""
	}
	return codes(s.Problems)
}

// startBenchMonitor runs m.Run; the returned function stops it and waits for it.
func startBenchMonitor(m *Monitor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// benchWriterTable is createWriterTable for benchmarks: table rmp.w and the application
// account app (INSERT on rmp.*, no READ ONLY ADMIN: read_only stops it).
func benchWriterTable(tb testing.TB, c *testenv.Cluster) {
	tb.Helper()
	c.Master().Exec(tb, "CREATE DATABASE IF NOT EXISTS rmp")
	c.Master().Exec(tb, "CREATE TABLE IF NOT EXISTS rmp.w (id BIGINT PRIMARY KEY, at DATETIME(6)) ENGINE=InnoDB")
	c.Master().Exec(tb, "CREATE USER IF NOT EXISTS app@'%' IDENTIFIED BY 'app-pw'")
	c.Master().Exec(tb, "GRANT SELECT, INSERT ON rmp.* TO app@'%'")
	c.WaitSync(tb)
}

// appWriter is an application that commits one row every interval through whichever server
// is the master, finding it by itself: it keeps writing to the server that last accepted
// an INSERT; on any error (1290 read_only, killed connection, refused, timeout) it tries
// every server in turn, starting with the next one, and stays on the first that accepts.
// When none does, it retries after retry. It never asks the monitor.
type appWriter struct {
	dbs      []*sql.DB
	addrs    []string
	interval time.Duration
	retry    time.Duration
	nextID   atomic.Int64

	mu        sync.Mutex
	cur       int
	acked     []int64
	ackedOn   []int // server index of each acked id
	errors    int
	lastOK    time.Time
	markAt    time.Time
	maxGap    time.Duration // longest gap between two commits since the mark
	firstOK   map[int]time.Time
	sinceMark int

	stop, done chan struct{}
}

func startAppWriter(tb testing.TB, c *testenv.Cluster, interval time.Duration) *appWriter {
	w := &appWriter{interval: interval, retry: 2 * time.Millisecond, firstOK: map[int]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range c.Servers {
		w.dbs = append(w.dbs, s.DB(tb, testenv.WithUser("app", "app-pw"), testenv.WithTimeouts(300*time.Millisecond, 500*time.Millisecond)))
		w.addrs = append(w.addrs, s.Addr())
	}
	go w.run()
	tb.Cleanup(w.Stop)
	return w
}

func (w *appWriter) insert(i int) bool {
	id := w.nextID.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := w.dbs[i].ExecContext(ctx, "INSERT INTO rmp.w VALUES (?, NOW(6))", id)
	cancel()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errors++
		return false
	}
	if !w.lastOK.IsZero() && now.Sub(w.lastOK) > w.maxGap && !w.markAt.IsZero() {
		w.maxGap = now.Sub(w.lastOK)
	}
	w.lastOK = now
	w.acked = append(w.acked, id)
	w.ackedOn = append(w.ackedOn, i)
	w.sinceMark++
	if _, ok := w.firstOK[i]; !ok && !w.markAt.IsZero() && now.After(w.markAt) {
		w.firstOK[i] = now
	}
	w.cur = i
	return true
}

func (w *appWriter) run() {
	defer close(w.done)
	sleep := func(d time.Duration) bool {
		select {
		case <-w.stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	for sleep(w.interval) {
		for {
			w.mu.Lock()
			cur := w.cur
			w.mu.Unlock()
			ok := false
			for k := 0; k < len(w.dbs) && !ok; k++ {
				ok = w.insert((cur + k) % len(w.dbs))
			}
			if ok || !sleep(w.retry) {
				break
			}
		}
	}
}

func (w *appWriter) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// mark starts a measurement: the longest gap and the first commit on each server are
// counted from now on (the gap straddling the mark included).
func (w *appWriter) mark(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.markAt, w.maxGap, w.sinceMark = at, 0, 0
	w.firstOK = map[int]time.Time{}
}

type writerStats struct {
	maxGap    time.Duration
	firstOK   map[int]time.Time
	sinceMark int
	acked     []int64
	server    int
}

func (w *appWriter) stats() writerStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := map[int]time.Time{}
	for k, v := range w.firstOK {
		f[k] = v
	}
	return writerStats{maxGap: w.maxGap, firstOK: f, sinceMark: w.sinceMark, acked: append([]int64(nil), w.acked...), server: w.cur}
}

// waitCommits waits until the writer committed n rows since the mark.
func (w *appWriter) waitCommits(tb testing.TB, n int, within time.Duration) writerStats {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		st := w.stats()
		if st.sinceMark >= n {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("writer committed only %d rows within %v (errors %d)", st.sinceMark, within, w.errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replWatch polls SHOW SLAVE STATUS of a set of servers as root.
type replWatch struct {
	addrs []string
	dbs   []*sql.DB
}

func newReplWatch(tb testing.TB, servers []*testenv.Server) *replWatch {
	rw := &replWatch{}
	for _, s := range servers {
		rw.addrs = append(rw.addrs, s.Addr())
		db := s.DB(tb, testenv.WithTimeouts(300*time.Millisecond, 300*time.Millisecond))
		db.SetMaxIdleConns(1)
		rw.dbs = append(rw.dbs, db)
	}
	return rw
}

// source returns "host:port" of the server's default channel when both its threads run,
// "" otherwise.
func replSource(ctx context.Context, db *sql.DB) string {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return ""
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if rows.Scan(ptrs...) != nil {
		return ""
	}
	st := map[string]string{}
	for i, c := range cols {
		st[c] = vals[i].String
	}
	if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
		return ""
	}
	return net.JoinHostPort(st["Master_Host"], st["Master_Port"])
}

// until polls every 2 ms until one of the watched servers, accepted by ok, has every other
// watched server replicating from it with both threads running; it returns when that was
// first seen and that server's address.
func (rw *replWatch) until(ctx context.Context, ok func(addr string) bool) (time.Time, string, error) {
	for {
		src := make([]string, len(rw.addrs))
		for i, db := range rw.dbs {
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			src[i] = replSource(qctx, db)
			cancel()
		}
		now := time.Now()
		for x, addr := range rw.addrs {
			if !ok(addr) {
				continue
			}
			all := true
			for i := range rw.addrs {
				if i != x && src[i] != addr {
					all = false
				}
			}
			if all {
				return now, addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, "", fmt.Errorf("not all replicating: sources %v", src)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// checkRun fails the benchmark when an acknowledged write is missing on the master (unless
// allowLoss, then it returns the count) or when a server holds a transaction the master
// lacks (an errant GTID).
func checkRun(tb testing.TB, master *testenv.Server, others []*testenv.Server, acked []int64, allowLoss bool) int {
	tb.Helper()
	// Replicas first: whatever they hold, the master held before.
	pos := map[string]gtid.List{}
	for _, s := range others {
		l, err := gtid.Parse(s.QueryString(tb, "SELECT @@gtid_current_pos"))
		if err != nil {
			tb.Fatal(err)
		}
		pos[s.Addr()] = l
	}
	mp, err := gtid.Parse(master.QueryString(tb, "SELECT @@gtid_current_pos"))
	if err != nil {
		tb.Fatal(err)
	}
	for a, l := range pos {
		if e := gtid.Errant(l, mp); len(e) > 0 {
			tb.Fatalf("errant GTID on %s: %s not in the master %s's %s", a, e, master.Addr(), mp)
		}
	}
	rows, err := master.DB(tb).Query("SELECT id FROM rmp.w")
	if err != nil {
		tb.Fatal(err)
	}
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		have[id] = true
	}
	rows.Close()
	var lost []int64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 && !allowLoss {
		tb.Fatalf("%d acknowledged writes missing on the master %s: %v", len(lost), master.Addr(), lost)
	}
	return len(lost)
}

func traceOn() bool { return os.Getenv("RMP_BENCH_TRACE") != "" }

// trace logs the events of a run relative to t0.
func trace(tb testing.TB, events *eventlog.Log, t0 time.Time, title string) {
	if !traceOn() {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	for _, e := range events.Recent("", 0) {
		if e.Time.Before(t0.Add(-time.Second)) {
			continue
		}
		fmt.Fprintf(&b, "  %+7.1f ms %-16s %-16s %s %s %s", msOf(e.Time.Sub(t0)), e.Kind, e.Server, e.OldState+"->"+e.NewState, e.Message, e.Error)
		if e.Duration > 0 {
			fmt.Fprintf(&b, " (%.1f ms)", msOf(e.Duration))
		}
		b.WriteString("\n")
	}
	tb.Log(b.String())
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reportP50Max reports the median and the maximum of ds in ms.
func reportP50Max(b *testing.B, ds []time.Duration, name string) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	b.ReportMetric(msOf(s[(len(s)-1)/2]), name+"-p50-ms")
	b.ReportMetric(msOf(s[len(s)-1]), name+"-max-ms")
}

func fmtMs(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.0f", msOf(d)))
	}
	return strings.Join(out, " ")
}

// BenchmarkFailover kills -9 the master of a 3-node cluster, 10 times, each on a fresh
// cluster, while an application writer commits every 5 ms. The monitor runs in automatic
// mode with every false-positive check on (0.2 s ticker, ping counter 3, heartbeat check).
// It measures from the kill (a) the first commit the promoted server accepts
// (writable-p50/max-ms) and (b) the moment the remaining replica replicates from the new
// master with both threads running (repointed-p50/max-ms). Targets: p50 <= 500 ms each.
func BenchmarkFailover(b *testing.B) {
	const runs = 10
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	var writable, repointed, detected, started []time.Duration
	lostTotal, ackedTotal := 0, 0
	for run := 0; run < runs; run++ {
		c := testenv.StartCluster(b, 3)
		benchWriterTable(b, c)
		m, events := benchFailoverMonitor(b, c, "automatic")
		stopMonitor := startBenchMonitor(m)
		benchWaitHealthy(b, m, run, 10*time.Second, func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
		w := startAppWriter(b, c, 5*time.Millisecond)
		w.mark(time.Now())
		w.waitCommits(b, 50, 10*time.Second)
		watch := newReplWatch(b, c.Replicas())
		// Kill anywhere within a tick.
		time.Sleep(time.Duration(rand.Int64N(int64(200 * time.Millisecond))))

		old := c.Master()
		t0 := time.Now()
		w.mark(t0)
		old.Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		doneAt, newAddr, err := watch.until(ctx, func(string) bool { return true })
		cancel()
		if err != nil {
			trace(b, events, t0, "failed run")
			b.Fatalf("run %d: %v", run, err)
		}
		nm := -1
		for i, s := range c.Servers {
			if s.Addr() == newAddr {
				nm = i
			}
		}
		st := w.waitCommits(b, 20, 10*time.Second)
		first, ok := st.firstOK[nm]
		if !ok || st.server != nm {
			b.Fatalf("run %d: writer on %s, want the new master %s", run, w.addrs[st.server], newAddr)
		}
		for s := m.Snapshot(); masterOf(s) != newAddr; s = m.Snapshot() {
			if time.Since(t0) > 20*time.Second {
				b.Fatalf("run %d: monitor names %q master, replicas follow %s", run, masterOf(s), newAddr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.Stop()
		stopMonitor()
		var others []*testenv.Server
		for i, s := range c.Servers[1:] {
			if i+1 != nm {
				others = append(others, s)
			}
		}
		st = w.stats()
		lost := checkRun(b, c.Servers[nm], others, st.acked, true)
		lostTotal += lost
		ackedTotal += len(st.acked)
		writable = append(writable, first.Sub(t0))
		repointed = append(repointed, doneAt.Sub(t0))
		for _, e := range events.Recent("", 0) {
			switch {
			case e.Kind == "state" && e.Server == old.Addr() && e.NewState == string(topology.StateSuspect) && len(detected) < len(writable):
				detected = append(detected, e.Time.Sub(t0))
			case e.Kind == "failover" && strings.HasPrefix(e.Message, "starting") && len(started) < len(writable):
				started = append(started, e.Time.Sub(t0))
			}
		}
		trace(b, events, t0, fmt.Sprintf("run %d: writable %.0f ms, repointed %.0f ms, lost %d", run, msOf(first.Sub(t0)), msOf(doneAt.Sub(t0)), lost))
		c.Close()
	}
	reportP50Max(b, writable, "writable")
	reportP50Max(b, repointed, "repointed")
	if len(detected) == len(writable) && len(started) == len(writable) {
		reportP50Max(b, detected, "suspect")
		reportP50Max(b, started, "failover-start")
	}
	b.ReportMetric(float64(lostTotal), "lost-acked-writes")
	b.Logf("writable ms: %s; repointed ms: %s; suspect ms: %s; failover start ms: %s; %d of %d acknowledged writes lost (asynchronous replication)",
		fmtMs(writable), fmtMs(repointed), fmtMs(detected), fmtMs(started), lostTotal, ackedTotal)
}

// BenchmarkSwitchover runs 10 switchovers on one 3-node cluster, each to the next server,
// while an application writer commits every 10 ms through whichever server accepts its
// writes (it finds the master by itself). It measures the longest gap between two commits
// around each switchover (gap-p50/max-ms) and the time from the start of the switchover
// until every replica and the old master replicate from the new master with both threads
// running (replicating-p50/max-ms). After each switchover it checks that every
// acknowledged write is on the new master and that no server holds an errant GTID.
// Targets: gap p50 <= 30 ms, replicating p50 <= 150 ms.
func BenchmarkSwitchover(b *testing.B) {
	const runs = 10
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	c := testenv.StartCluster(b, 3)
	benchWriterTable(b, c)
	m, events := benchFailoverMonitor(b, c, "manual")
	stopMonitor := startBenchMonitor(m)
	defer stopMonitor()
	deadline := time.Now().Add(10 * time.Second)
	for s := m.Snapshot(); s == nil || states(s) != "Master,Slave,Slave"; s = m.Snapshot() {
		if time.Now().After(deadline) {
			b.Fatalf("cluster not healthy: %v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w := startAppWriter(b, c, 10*time.Millisecond)
	watch := newReplWatch(b, c.Servers)
	master := 0
	var gaps, repl, writable, durations []time.Duration
	for run := 0; run < runs; run++ {
		w.mark(time.Now())
		w.waitCommits(b, 30, 10*time.Second)
		target := (master + 1) % len(c.Servers)
		hp, _ := ipv6.ParseHostPort(c.Servers[target].Addr(), 3306)

		t0 := time.Now()
		w.mark(t0)
		type watched struct {
			at  time.Time
			err error
		}
		got := make(chan watched, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		go func() {
			at, _, err := watch.until(ctx, func(a string) bool { return a == hp.String() })
			got <- watched{at, err}
		}()
		p, res, err := m.Switchover(context.Background(), &hp, false)
		if err != nil {
			cancel() // the watch would wait for its deadline
		}
		wr := <-got
		cancel()
		if err != nil {
			trace(b, events, t0, "failed switchover")
			for _, s := range c.Servers {
				b.Logf("error log of %s (running %v):\n%s", s.Addr(), s.Running(), s.ErrorLog())
			}
			b.Fatalf("switchover %d to %s: %v (%+v)", run, hp, err, res)
		}
		if p.NewMaster != hp {
			b.Fatalf("switchover %d went to %s, want %s", run, p.NewMaster, hp)
		}
		if wr.err != nil {
			trace(b, events, t0, "failed switchover")
			b.Fatalf("switchover %d to %s: %v", run, hp, wr.err)
		}
		st := w.waitCommits(b, 30, 10*time.Second)
		if st.server != target {
			b.Fatalf("switchover %d: writer on %s, want %s", run, w.addrs[st.server], hp)
		}
		var others []*testenv.Server
		for i, s := range c.Servers {
			if i != target {
				others = append(others, s)
			}
		}
		checkRun(b, c.Servers[target], others, st.acked, false)
		if s := m.Tick(context.Background()); hasProblem(s, topology.ErrantGTID) || masterOf(s) != hp.String() {
			b.Fatalf("after switchover %d: master %s, problems %s", run, masterOf(s), codes(s.Problems))
		}
		gaps = append(gaps, st.maxGap)
		repl = append(repl, wr.at.Sub(t0))
		writable = append(writable, res.WritableAfter)
		durations = append(durations, res.Duration)
		trace(b, events, t0, fmt.Sprintf("switchover %d: gap %.1f ms, replicating %.1f ms, writable after %.1f ms, done %.1f ms",
			run, msOf(st.maxGap), msOf(wr.at.Sub(t0)), msOf(res.WritableAfter), msOf(res.Duration)))
		master = target
	}
	reportP50Max(b, gaps, "gap")
	reportP50Max(b, repl, "replicating")
	reportP50Max(b, writable, "writable")
	b.Logf("gap ms: %s; replicating ms: %s; writable-after ms: %s; plan duration ms: %s",
		fmtMs(gaps), fmtMs(repl), fmtMs(writable), fmtMs(durations))
}
