package haproxy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// Tests on Debian's real haproxy and real MariaDB servers (internal/testenv).

// ---- helpers ----

func addrOf(t testing.TB, s *testenv.Server) ipv6.HostPort { return hp(t, s.Addr()) }

// settingsFor binds the frontends on 127.0.0.1 and [::1], on free ports.
func settingsFor(t testing.TB, c *testenv.Cluster) Settings {
	s := Settings{
		Cluster:   "c1",
		WritePort: testenv.FreePort(t), ReadPort: testenv.FreePort(t), StatPort: testenv.FreePort(t),
		WriteBind: []string{"127.0.0.1"}, ReadBind: []string{"127.0.0.1"}, IPv6: []string{"[::1]"},
		WorkDir:       testenv.ShortTempDir(t),
		Rules:         Rules{ReadOnMasterNoSlave: true, MaxReplicationLag: 30},
		CheckInterval: 200 * time.Millisecond, ConnectTimeout: time.Second,
	}
	for _, srv := range c.Servers {
		s.Servers = append(s.Servers, addrOf(t, srv))
	}
	return s
}

// startHAProxy generates the config from the snapshot, starts haproxy on it and returns a
// bootstrapped router.
func startHAProxy(t testing.TB, set Settings, snap *topology.Snapshot) (*testenv.HAProxy, *Router) {
	t.Helper()
	cfg, err := Config(set, snap)
	if err != nil {
		t.Fatal(err)
	}
	h := testenv.StartHAProxy(t, cfg)
	r := NewRouter("haproxy "+set.Socket(), NewClient(set.Socket()), set, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Bootstrap(ctx, snap); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, h.Output())
	}
	return h, r
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// newMonitor builds a monitor with the values of cluster/failover_test.go's failoverMonitor.
func newMonitor(t testing.TB, c *testenv.Cluster, mode string, routers ...router.Router) *cluster.Monitor {
	t.Helper()
	var hosts []ipv6.HostPort
	for _, s := range c.Servers {
		hosts = append(hosts, addrOf(t, s))
	}
	events, err := eventlog.Open(filepath.Join(testenv.ShortTempDir(t), "events.jsonl"), 200)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	cfg := cluster.MonitorConfig{
		Cluster: "c1", Hosts: hosts, Ticker: 200 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond,
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
	m := cluster.NewMonitor(cfg, cluster.MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), events, quietLog())
	t.Cleanup(m.Close)
	return m
}

// runMonitor runs m.Run until the test ends.
func runMonitor(t testing.TB, m *cluster.Monitor) {
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

// prepare creates the written table and the application account (read_only stops it).
func prepare(t testing.TB, c *testenv.Cluster) {
	t.Helper()
	c.Master().Exec(t, "CREATE DATABASE IF NOT EXISTS rmp")
	c.Master().Exec(t, "CREATE TABLE IF NOT EXISTS rmp.hw (id BIGINT PRIMARY KEY, via VARCHAR(16), sid INT, at DATETIME(6)) ENGINE=InnoDB")
	c.Master().Exec(t, "CREATE USER IF NOT EXISTS app@'%' IDENTIFIED BY 'app-pw'")
	c.Master().Exec(t, "GRANT SELECT, INSERT ON rmp.* TO app@'%'")
	c.WaitSync(t)
}

// appDB connects as the application account to addr ("127.0.0.1:p" or "[::1]:p").
func appDB(t testing.TB, addr string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "app", "app-pw", "tcp", addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 300*time.Millisecond, time.Second, time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func serverID(t testing.TB, db *sql.DB) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var id int
	err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	return id, err
}

type ack struct {
	id int64
	at time.Time
}

// hwriter inserts a row every interval through one address, reconnecting as needed, and
// records what was acknowledged. Each writer has its own id range.
type hwriter struct {
	via     string
	attempt sync.Mutex // held during one insert
	paused  atomic.Bool
	mu      sync.Mutex
	acks    []ack
	errs    int
	stop    chan struct{}
	done    chan struct{}
}

func startHWriter(t testing.TB, addr, via string, base int64, interval time.Duration) *hwriter {
	db := appDB(t, addr)
	w := &hwriter{via: via, stop: make(chan struct{}), done: make(chan struct{})}
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
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO rmp.hw (id, via, sid, at) VALUES (?, ?, @@server_id, NOW(6))", id, via)
			cancel()
			now := time.Now()
			w.attempt.Unlock()
			w.mu.Lock()
			if err == nil {
				w.acks = append(w.acks, ack{id, now})
			} else {
				w.errs++
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *hwriter) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Pause stops writing once the insert in flight, if any, is answered.
func (w *hwriter) Pause() {
	w.paused.Store(true)
	w.attempt.Lock()
	w.attempt.Unlock() //nolint:staticcheck // waits for the attempt in flight
}

// Resume writes again.
func (w *hwriter) Resume() { w.paused.Store(false) }

// Errors counts the writes that failed.
func (w *hwriter) Errors() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs
}

func (w *hwriter) Acks() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

func (w *hwriter) waitAcks(t testing.TB, n int, within time.Duration) {
	t.Helper()
	waitFor(t, within, fmt.Sprintf("writer over %s: %d acknowledged writes", w.via, n), func() bool { return len(w.Acks()) >= n })
}

// firstAckAfter returns the first acknowledgement at or after t0.
func (w *hwriter) firstAckAfter(t0 time.Time) (ack, bool) {
	for _, a := range w.Acks() {
		if !a.at.Before(t0) {
			return a, true
		}
	}
	return ack{}, false
}

// timedRouter records when the executor calls Failover (the promote step is done then).
type timedRouter struct {
	router.Router
	mu    sync.Mutex
	calls []time.Time
}

func (r *timedRouter) Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	r.mu.Lock()
	r.calls = append(r.calls, time.Now())
	r.mu.Unlock()
	return r.Router.Failover(ctx, oldMaster, newMaster)
}

func (r *timedRouter) Calls() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls...)
}

// slotStates reads the admin state of every slot from HAProxy itself.
func slotStates(t testing.TB, r *Router) map[Slot]AdminState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := r.Client().ShowServersState(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[Slot]AdminState{}
	for _, s := range all {
		out[Slot{s.Backend, s.Name}] = s.Admin()
	}
	return out
}

// binlogSeq returns the sequence number of (domain 0, serverID) in a server's
// gtid_binlog_state (one GTID per domain and server id).
func binlogSeq(t testing.TB, s *testenv.Server, serverID int) uint64 {
	t.Helper()
	return seqOf(t, s.QueryString(t, "SELECT @@gtid_binlog_state"), serverID)
}

// seqOf returns the sequence of (domain 0, serverID) in a GTID list, 0 when absent.
func seqOf(t testing.TB, list string, serverID int) uint64 {
	t.Helper()
	for _, p := range strings.Split(list, ",") {
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

// ---- tests ----

func TestGoldenConfigsPassHAProxyCheck(t *testing.T) {
	testenv.RequireHAProxy(t)
	files, _ := filepath.Glob("testdata/*.cfg")
	if len(files) == 0 {
		t.Fatal("no golden config")
	}
	for _, f := range files {
		out, err := exec.Command("/usr/sbin/haproxy", "-c", "-f", f).CombinedOutput()
		if err != nil {
			t.Errorf("haproxy -c %s: %v\n%s", f, err, out)
		}
	}
}

// The runtime client against a real haproxy: answers, refusals, timeouts. The slots point
// to closed ports; no database is needed.
func TestRuntimeClient(t *testing.T) {
	testenv.RequireHAProxy(t)
	set := Settings{
		Cluster: "rt", WritePort: testenv.FreePort(t), ReadPort: testenv.FreePort(t),
		WriteBind: []string{"127.0.0.1"}, ReadBind: []string{"127.0.0.1"},
		WorkDir: testenv.ShortTempDir(t), Servers: []ipv6.HostPort{hp(t, "127.0.0.1:1"), hp(t, "[::1]:2")},
	}
	cfg, err := Config(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.StartHAProxy(t, cfg)
	c := NewClient(set.Socket())
	ctx := context.Background()
	l := set.Layout()
	s0, s1 := SlotName(set.Servers[0]), SlotName(set.Servers[1])

	st, err := c.ShowServersState(ctx, l.WriteBackend)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Name != s0 || st[1].Addr != "::1" || st[1].Port != 2 || st[0].Admin() != Maint {
		t.Fatalf("show servers state: %+v", st)
	}
	for _, step := range []struct {
		do   func() error
		want AdminState
	}{
		{func() error { return c.SetServerState(ctx, l.WriteBackend, s0, Ready) }, Ready},
		{func() error { return c.SetServerState(ctx, l.WriteBackend, s0, Drain) }, Drain},
		{func() error { return c.DisableServer(ctx, l.WriteBackend, s0) }, Maint},
		{func() error { return c.EnableServer(ctx, l.WriteBackend, s0) }, Ready},
		{func() error { return c.SetServerState(ctx, l.WriteBackend, s0, Maint) }, Maint},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		st, _ := c.ShowServersState(ctx, l.WriteBackend)
		if st[0].Admin() != step.want {
			t.Fatalf("state %s (flags %#x), want %s", st[0].Admin(), st[0].AdminFlags, step.want)
		}
	}
	// Addresses switch families both ways.
	if err := c.SetServerAddr(ctx, l.WriteBackend, s0, hp(t, "[::1]:3307")); err != nil {
		t.Fatal(err)
	}
	st, _ = c.ShowServersState(ctx, l.WriteBackend)
	if st[0].Addr != "::1" || st[0].Port != 3307 {
		t.Fatalf("after set addr: %+v", st[0])
	}
	if err := c.SetServerAddr(ctx, l.WriteBackend, s0, hp(t, "127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	if err := c.ShutdownSessions(ctx, l.ReadBackend, s1); err != nil {
		t.Fatal(err)
	}
	// Refusals are errors, recognisable.
	for name, err := range map[string]error{
		"unknown server":  c.SetServerState(ctx, l.WriteBackend, "nope", Ready),
		"unknown backend": c.ShutdownSessions(ctx, "nope", s0),
		"unknown addr":    c.SetServerAddr(ctx, l.WriteBackend, "nope", hp(t, "127.0.0.1:1")),
		"show unknown": func() error {
			_, err := c.ShowServersState(ctx, "nope")
			return err
		}(),
	} {
		if !errors.Is(err, ErrNoSuchServer) {
			t.Errorf("%s: %v, want ErrNoSuchServer", name, err)
		}
	}
	if err := c.Exec(ctx, "bogus command"); err == nil {
		t.Error("unknown command accepted")
	}
	err = c.Exec(ctx, stateCommand(l.WriteBackend+"/"+s0, Ready), stateCommand(l.WriteBackend+"/nope", Ready), stateCommand(l.ReadBackend+"/"+s1, Ready))
	if err == nil || !strings.Contains(err.Error(), "/nope") || strings.Contains(err.Error(), s1) {
		t.Errorf("batch error %v should name only the refused command", err)
	}
	if err := c.SetServerState(ctx, l.WriteBackend, "a;b", Ready); err == nil {
		t.Error("';' in a name accepted")
	}
	// Deadlines: an expired context, and a socket that never answers.
	expired, cancel := context.WithTimeout(ctx, -time.Second)
	defer cancel()
	if _, err := c.ShowServersState(expired, ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: %v", err)
	}
	ln, err := net.Listen("unix", filepath.Join(testenv.ShortTempDir(t), "mute.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mute := &Client{Network: "unix", Address: ln.Addr().String(), Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := mute.Raw(ctx, "show info"); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("mute socket: %v after %v", err, time.Since(start))
	}
}

// (a) The generated config starts, listens on 127.0.0.1 and [::1], and routes writes to
// the master and reads to the replicas over both families.
func TestGeneratedConfigServesIPv4AndIPv6(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 3)
	prepare(t, c)
	m := newMonitor(t, c, "manual")
	snap := tickUntil(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	set := settingsFor(t, c)
	startHAProxy(t, set, snap)
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		w := appDB(t, fmt.Sprintf("%s:%d", host, set.WritePort))
		if id, err := serverID(t, w); err != nil || id != c.Master().ServerID() {
			t.Fatalf("write port over %s: server_id %d (%v), want the master's %d", host, id, err, c.Master().ServerID())
		}
		seen := map[int]bool{}
		for i := 0; i < 20; i++ {
			r := appDB(t, fmt.Sprintf("%s:%d", host, set.ReadPort))
			id, err := serverID(t, r)
			if err != nil {
				t.Fatalf("read port over %s: %v", host, err)
			}
			seen[id] = true
			r.Close()
		}
		if seen[c.Master().ServerID()] || len(seen) != 2 {
			t.Fatalf("read port over %s reached server ids %v, want the two replicas", host, seen)
		}
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://%s:%d/", host, set.StatPort))
		if err != nil {
			t.Fatalf("stats page over %s: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stats page over %s: %s", host, resp.Status)
		}
	}
}

// (b) Writers through HAProxy over [::1] and 127.0.0.1 keep writing across an automatic
// failover (kill -9 of the master): the executor calls the router's Failover.
func TestWritesFollowFailover(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 3)
	prepare(t, c)
	set := settingsFor(t, c)
	probe := newMonitor(t, c, "manual")
	snap := tickUntil(t, probe, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	probe.Close()
	h, r := startHAProxy(t, set, snap)
	tr := &timedRouter{Router: r}
	m := newMonitor(t, c, "automatic", tr)
	runMonitor(t, m)

	w4 := startHWriter(t, fmt.Sprintf("127.0.0.1:%d", set.WritePort), "ipv4", 0, 5*time.Millisecond)
	w6 := startHWriter(t, fmt.Sprintf("[::1]:%d", set.WritePort), "ipv6", 1e9, 5*time.Millisecond)
	w4.waitAcks(t, 30, 10*time.Second)
	w6.waitAcks(t, 30, 10*time.Second)

	old := c.Master()
	old.Kill()
	waitFor(t, 20*time.Second, "failover", func() bool {
		s := m.Snapshot()
		ms, ok := s.MasterServer()
		return ok && ms.Addr != addrOf(t, old) && ms.State == topology.StateMaster && len(tr.Calls()) == 1
	})
	newAddr := masterOf(m.Snapshot())
	var nm *testenv.Server
	for _, s := range c.Servers {
		if s.Addr() == newAddr {
			nm = s
		}
	}
	t0 := tr.Calls()[0]
	for _, w := range []*hwriter{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
		a, _ := w.firstAckAfter(t0)
		t.Logf("writer over %s: first write acknowledged %v after the router's failover call (%d errors on the way)", w.via, a.at.Sub(t0), w.Errors())
	}
	w4.Stop()
	w6.Stop()
	// Every write acknowledged after the switch went to the new master.
	for _, w := range []*hwriter{w4, w6} {
		for _, a := range w.Acks() {
			if a.at.After(t0) {
				if sid := nm.QueryString(t, "SELECT sid FROM rmp.hw WHERE id = ?", a.id); sid != strconv.Itoa(nm.ServerID()) {
					t.Fatalf("write %d over %s acknowledged after the failover has server_id %q, want %d", a.id, w.via, sid, nm.ServerID())
				}
			}
		}
	}
	got := slotStates(t, r)
	l := r.Layout()
	if got[Slot{l.WriteBackend, SlotName(addrOf(t, nm))}] != Ready || got[Slot{l.WriteBackend, SlotName(addrOf(t, old))}] != Maint || got[Slot{l.ReadBackend, SlotName(addrOf(t, old))}] != Maint {
		t.Fatalf("slots after failover: %v\n%s", got, h.Output())
	}
}

// (b) Writers keep writing across a switchover, and no write reaches the demoted master:
// its own server_id gains no GTID after the switch, and it replicates from the new one.
func TestSwitchoverLeavesNoWriteOnDemotedMaster(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 3)
	prepare(t, c)
	set := settingsFor(t, c)
	probe := newMonitor(t, c, "manual")
	snap := tickUntil(t, probe, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	probe.Close()
	_, r := startHAProxy(t, set, snap)
	tr := &timedRouter{Router: r}
	m := newMonitor(t, c, "manual", tr)
	runMonitor(t, m)

	w4 := startHWriter(t, fmt.Sprintf("127.0.0.1:%d", set.WritePort), "ipv4", 0, 5*time.Millisecond)
	w6 := startHWriter(t, fmt.Sprintf("[::1]:%d", set.WritePort), "ipv6", 1e9, 5*time.Millisecond)
	w4.waitAcks(t, 30, 10*time.Second)
	w6.waitAcks(t, 30, 10*time.Second)

	old, nm := c.Master(), c.Servers[2]
	target := addrOf(t, nm)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, res, err := m.Switchover(ctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	oldSeq := binlogSeq(t, old, old.ServerID())
	t0 := tr.Calls()[0]
	for _, w := range []*hwriter{w4, w6} {
		w.waitAcks(t, len(w.Acks())+50, 10*time.Second)
		a, _ := w.firstAckAfter(t0)
		t.Logf("writer over %s: first write acknowledged %v after the router's failover call", w.via, a.at.Sub(t0))
	}
	time.Sleep(300 * time.Millisecond) // a few more ticks and writes
	w4.Stop()
	w6.Stop()

	// The demoted master replicates everything and wrote nothing of its own.
	pos := nm.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := old.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
		t.Fatalf("demoted master did not catch up with %s", pos)
	}
	st := old.SlaveStatus(t)
	if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" || st["Master_Port"] != strconv.Itoa(nm.Port()) {
		t.Fatalf("demoted master replication: IO %s SQL %s from port %s", st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Master_Port"])
	}
	if seq := binlogSeq(t, old, old.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", old.ServerID(), seq, oldSeq)
	}
	if l := old.QueryString(t, "SELECT @@gtid_binlog_pos"); seqOf(t, l, old.ServerID()) != 0 {
		t.Fatalf("demoted master's gtid_binlog_pos %s still ends with its own GTID after new writes", l)
	}
	// Every acknowledged write is on the new master; those after the switch were its own.
	for _, w := range []*hwriter{w4, w6} {
		for _, a := range w.Acks() {
			sid := nm.QueryString(t, "SELECT IFNULL((SELECT sid FROM rmp.hw WHERE id = ?), 'missing')", a.id)
			if sid == "missing" {
				t.Fatalf("acknowledged write %d over %s lost", a.id, w.via)
			}
			if a.at.After(t0) && sid != strconv.Itoa(nm.ServerID()) {
				t.Fatalf("write %d over %s acknowledged after the switch has server_id %s", a.id, w.via, sid)
			}
		}
	}
	waitFor(t, 5*time.Second, "reconciled read backend", func() bool {
		got := slotStates(t, r)
		lay := r.Layout()
		return got[Slot{lay.ReadBackend, SlotName(addrOf(t, old))}] == Ready && got[Slot{lay.ReadBackend, SlotName(target)}] == Maint &&
			got[Slot{lay.WriteBackend, SlotName(addrOf(t, old))}] == Maint && got[Slot{lay.WriteBackend, SlotName(target)}] == Ready
	})
}

// (c) Maintenance drains a replica out of the read backend (router.Drained: HAProxy's drain
// state, no new connection): by the router's Maintenance, and by the monitor's
// SetMaintenance and ticks when it drives the router.
func TestMaintenanceTakesReplicaOutOfReads(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 3)
	prepare(t, c)
	m := newMonitor(t, c, "manual")
	snap := tickUntil(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	set := settingsFor(t, c)
	_, r := startHAProxy(t, set, snap)
	rep := c.Servers[1]
	slot := Slot{r.Layout().ReadBackend, SlotName(addrOf(t, rep))}
	readIDs := func() map[int]bool {
		seen := map[int]bool{}
		for i := 0; i < 20; i++ {
			for _, host := range []string{"127.0.0.1", "[::1]"} {
				db := appDB(t, fmt.Sprintf("%s:%d", host, set.ReadPort))
				id, err := serverID(t, db)
				if err != nil {
					t.Fatalf("read over %s: %v", host, err)
				}
				seen[id] = true
				db.Close()
			}
		}
		return seen
	}
	ctx := context.Background()
	if err := r.Maintenance(ctx, addrOf(t, rep), true); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Drain {
		t.Fatalf("read slot %s = %s, want drain", slot, got)
	}
	if seen := readIDs(); seen[rep.ServerID()] || !seen[c.Servers[2].ServerID()] {
		t.Fatalf("reads reached %v during maintenance of server %d", seen, rep.ServerID())
	}
	// A tick does not undo the operator's maintenance.
	if err := r.Reconcile(ctx, m.Tick(ctx)); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Drain {
		t.Fatalf("reconcile undid maintenance: %s", got)
	}
	if err := r.Maintenance(ctx, addrOf(t, rep), false); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Ready {
		t.Fatalf("read slot %s = %s after maintenance, want ready", slot, got)
	}
	if seen := readIDs(); !seen[rep.ServerID()] {
		t.Fatalf("reads never reached server %d after maintenance: %v", rep.ServerID(), seen)
	}

	// Through a monitor that drives the router: SetMaintenance tells it at once, the ticks
	// (Reconcile) keep the server out while the flag holds and put it back after.
	md := newMonitor(t, c, "manual", r)
	md.Tick(ctx)
	if err := md.SetMaintenance(ctx, addrOf(t, rep), true); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Drain {
		t.Fatalf("read slot %s = %s right after the monitor's maintenance, want drain", slot, got)
	}
	md.Tick(ctx)
	if got := slotStates(t, r)[slot]; got != Drain {
		t.Fatalf("read slot %s = %s after a tick in maintenance, want drain", slot, got)
	}
	if err := md.SetMaintenance(ctx, addrOf(t, rep), false); err != nil {
		t.Fatal(err)
	}
	tickUntil(t, md, 5*time.Second, "maintenance over", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	if got := slotStates(t, r)[slot]; got != Ready {
		t.Fatalf("read slot %s = %s after maintenance ended, want ready", slot, got)
	}
}

// router.Drained (HAProxy drain) lets an open read session finish and sends new ones
// elsewhere; router.Offline (maint and shutdown sessions) ends it.
func TestDrainedKeepsSessionsOfflineEndsThem(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 3)
	prepare(t, c)
	m := newMonitor(t, c, "manual")
	snap := tickUntil(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	set := settingsFor(t, c)
	_, r := startHAProxy(t, set, snap)
	ctx := context.Background()
	conn, err := appDB(t, fmt.Sprintf("127.0.0.1:%d", set.ReadPort)).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sessionID := func() (int, error) {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var id int
		err := conn.QueryRowContext(qctx, "SELECT @@server_id").Scan(&id)
		return id, err
	}
	id, err := sessionID()
	if err != nil {
		t.Fatal(err)
	}
	x := -1
	for i, srv := range c.Servers {
		if srv.ServerID() == id {
			x = i
		}
	}
	if x < 1 {
		t.Fatalf("read session on server_id %d, want a replica", id)
	}
	with := func(st topology.State) *topology.Snapshot {
		s := *snap
		s.Servers = append([]topology.Server(nil), snap.Servers...)
		s.Servers[x].State = st
		s.Time = time.Now()
		return &s
	}
	slot := Slot{r.Layout().ReadBackend, SlotName(addrOf(t, c.Servers[x]))}

	if err := r.Reconcile(ctx, with(topology.StateSlaveErr)); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Drain {
		t.Fatalf("read slot of a SlaveErr replica %s, want drain", got)
	}
	if got, err := sessionID(); err != nil || got != id {
		t.Fatalf("open session on a drained replica: server_id %d, %v", got, err)
	}
	for i := 0; i < 10; i++ {
		db := appDB(t, fmt.Sprintf("127.0.0.1:%d", set.ReadPort))
		if got, err := serverID(t, db); err != nil || got == id {
			t.Fatalf("new read session: server_id %d (%v), the drained replica is %d", got, err, id)
		}
		db.Close()
	}

	if err := r.Reconcile(ctx, with(topology.StateStandAlone)); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[slot]; got != Maint {
		t.Fatalf("read slot of a standalone server %s, want maint", got)
	}
	waitFor(t, 3*time.Second, "session on the offline server ended", func() bool { _, err := sessionID(); return err != nil })
}

// Reconcile costs no runtime call when nothing changed, and repairs HAProxy after drift
// (an operator's command, a restart) at the next resync.
func TestReconcileIsCheapAndRepairsDrift(t *testing.T) {
	testenv.RequireHAProxy(t)
	c := testenv.StartCluster(t, 2)
	m := newMonitor(t, c, "manual")
	snap := tickUntil(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave" })
	set := settingsFor(t, c)
	_, r := startHAProxy(t, set, snap)
	// Point the router at a socket that does not exist: an unchanged snapshot must not
	// need it.
	live := r.client
	r.client = &Client{Network: "unix", Address: filepath.Join(set.WorkDir, "absent.sock")}
	if err := r.Reconcile(context.Background(), m.Tick(context.Background())); err != nil {
		t.Fatalf("unchanged snapshot made a runtime call: %v", err)
	}
	r.client = live
	// Drift: an operator readies the replica's write slot.
	l := r.Layout()
	rep := SlotName(addrOf(t, c.Servers[1]))
	if err := live.SetServerState(context.Background(), l.WriteBackend, rep, Ready); err != nil {
		t.Fatal(err)
	}
	r.SetResync(0)
	if err := r.Reconcile(context.Background(), m.Tick(context.Background())); err != nil {
		t.Fatal(err)
	}
	if got := slotStates(t, r)[Slot{l.WriteBackend, rep}]; got != Maint {
		t.Fatalf("drift not repaired: replica's write slot %s", got)
	}
}

func TestMain(m *testing.M) {
	// The driver logs every connection HAProxy cuts during a switch; the tests count them.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	os.Exit(m.Run())
}
