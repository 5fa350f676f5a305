package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StartTimeout bounds a server's start-up (process start to first successful ping).
const StartTimeout = 30 * time.Second

// Option configures StartCluster.
type Option func(*clusterConfig)

type clusterConfig struct {
	standalone bool
	replIPv6   bool
	hosts      []*Host
	extraArgs  []string
	parents    []int
	defaults   bool
}

// Standalone starts the servers without replication: all writable, no CHANGE MASTER.
func Standalone() Option { return func(c *clusterConfig) { c.standalone = true } }

// ReplicateOverIPv6 makes the replicas connect to the master over IPv6 (MASTER_HOST='::1',
// or the host's fd00:5eed:: address on namespaced hosts).
func ReplicateOverIPv6() Option { return func(c *clusterConfig) { c.replIPv6 = true } }

// OnHosts runs server i inside hosts[i] (a network namespace of NewNetwork), bound on the
// host's IPv4 and IPv6 addresses and its loopback. len(hosts) must be at least n.
func OnHosts(hosts ...*Host) Option { return func(c *clusterConfig) { c.hosts = hosts } }

// WithArgs appends mariadbd options (e.g. "--slave-net-timeout=5") to every server.
func WithArgs(args ...string) Option {
	return func(c *clusterConfig) { c.extraArgs = append(c.extraArgs, args...) }
}

// ReplicationDefaults keeps MariaDB's own replication timing: slave_net_timeout 60 s and no
// MASTER_HEARTBEAT_PERIOD (so a heartbeat every 30 s), as on a server nobody tuned. By
// default the test servers use slave_net_timeout 10 s and a 1 s heartbeat.
func ReplicationDefaults() Option { return func(c *clusterConfig) { c.defaults = true } }

// Tree makes a replication tree instead of a flat one: server i replicates from server
// parents[i] (parents[0] is ignored: Servers[0] is the master). Tree(-1, 0, 1, 1, 0) is
// s0 -> s1 -> {s2, s3} and s0 -> s4: s1 is a relay (log_slave_updates is on everywhere).
func Tree(parents ...int) Option { return func(c *clusterConfig) { c.parents = parents } }

// Cluster is a set of servers started together; Servers[0] is the master unless Standalone.
type Cluster struct {
	Servers []*Server
	cfg     clusterConfig
	root    string
	closed  sync.Once
}

// Close kills every server and removes their directories. It runs at the end of the test
// anyway; call it to tear a cluster down earlier.
func (c *Cluster) Close() {
	c.closed.Do(func() {
		for _, s := range c.Servers {
			s.cleanup()
		}
		if c.root != "" {
			os.RemoveAll(c.root)
		}
	})
}

// Master returns Servers[0].
func (c *Cluster) Master() *Server { return c.Servers[0] }

// Replicas returns Servers[1:].
func (c *Cluster) Replicas() []*Server { return c.Servers[1:] }

// Server is one mariadbd child process with its own directory, datadir and port.
type Server struct {
	t       testing.TB
	index   int
	port    int
	dir     string
	host    *Host    // nil: runs in this namespace on loopback
	args    []string // mariadbd arguments, reused by Restart
	mu      sync.Mutex
	proc    *process
	adminDB *sql.DB
}

// StartCluster starts n mariadbd servers and, unless Standalone, makes Servers[0] a
// writable GTID master and the others read-only replicas (MASTER_USE_GTID=slave_pos),
// returning once every replica's IO and SQL threads run. Everything is torn down when the
// test ends.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	RequireMariaDB(t)
	if n < 1 {
		t.Fatalf("testenv: StartCluster needs n >= 1, got %d", n)
	}
	c := &Cluster{}
	for _, o := range opts {
		o(&c.cfg)
	}
	if c.cfg.parents != nil && len(c.cfg.parents) != n {
		t.Fatalf("testenv: Tree got %d parents for %d servers", len(c.cfg.parents), n)
	}
	for i, p := range c.cfg.parents {
		if i > 0 && (p < 0 || p >= n || p == i) {
			t.Fatalf("testenv: Tree: server %d cannot replicate from %d", i, p)
		}
	}
	if c.cfg.hosts != nil && len(c.cfg.hosts) < n {
		t.Fatalf("testenv: OnHosts got %d hosts for %d servers", len(c.cfg.hosts), n)
	}
	tpl, err := templateDataDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	root, err := os.MkdirTemp("", "rmp")
	if err != nil {
		t.Fatalf("testenv: temp dir: %v", err)
	}
	c.root = root
	sweepOnce.Do(sweepStaleDirs)
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Kills the processes, then removes their directories; also on a failed start.
	t.Cleanup(c.Close)
	for i := range n {
		s := &Server{t: t, index: i, dir: filepath.Join(root, "s"+strconv.Itoa(i))}
		if c.cfg.hosts != nil {
			s.host = c.cfg.hosts[i]
		}
		if err := copyTree(tpl, filepath.Join(s.dir, "data")); err != nil {
			t.Fatalf("testenv: server %d: copy template: %v", i, err)
		}
		c.Servers = append(c.Servers, s)
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range c.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			extra := c.cfg.extraArgs
			if c.cfg.defaults {
				extra = append([]string{"--slave-net-timeout=60"}, extra...) // MariaDB's default; a later option wins
			}
			errs[i] = s.startFresh(extra)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if !c.cfg.standalone && n > 1 {
		if err := c.setupReplication(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	return c
}

// startFresh picks a port and starts the server, retrying with another port when the
// chosen one was taken meanwhile by another process.
func (s *Server) startFresh(extra []string) error {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
		s.args = s.buildArgs(extra)
		lastErr = s.start()
		if lastErr == nil {
			return nil
		}
		log := tailFile(s.ErrorLogPath(), 40)
		if !strings.Contains(log, "Address already in use") && !strings.Contains(log, "Bind on TCP/IP port") {
			return lastErr
		}
		_ = os.Remove(s.ErrorLogPath())
	}
	return lastErr
}

func (s *Server) buildArgs(extra []string) []string {
	bind := "127.0.0.1,::1"
	if s.host != nil {
		bind = "127.0.0.1,::1," + s.host.IPv4 + "," + s.host.IPv6
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--tmpdir=" + s.dir, // private: a starting mariadbd deletes stray #sql files of its tmpdir
		"--socket=" + filepath.Join(s.dir, "sock"),
		"--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error=" + s.ErrorLogPath(),
		"--port=" + strconv.Itoa(s.port),
		"--bind-address=" + bind,
		"--report-host=" + s.Host(),
		"--report-port=" + strconv.Itoa(s.port),
		"--server-id=" + strconv.Itoa(s.ServerID()),
		"--log-bin=mariadb-bin",
		"--relay-log=relay-bin",
		"--log-slave-updates=1",
		"--binlog-format=ROW",
		"--gtid-strict-mode=1",
		"--sync-binlog=0",
		"--skip-name-resolve",
		"--performance-schema=0",
		"--max-connections=64",
		"--thread-cache-size=8",
		"--table-open-cache=256",
		"--table-definition-cache=400",
		"--key-buffer-size=64K",
		"--aria-pagecache-buffer-size=1M",
		"--query-cache-size=0",
		"--slave-net-timeout=10",
		"--lc-messages=en_US",
	}
	args = append(args, innodbArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return append(args, extra...)
}

// start runs mariadbd with s.args and waits until it answers a ping over TCP.
func (s *Server) start() error {
	var cmd *exec.Cmd
	if s.host != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.host.NS, mariadbdPath}, s.args...)...)
	} else {
		cmd = exec.Command(mariadbdPath, s.args...)
	}
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("server %d: %w", s.index, err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := s.waitReady(p); err != nil {
		p.kill()
		return fmt.Errorf("server %d (port %d): %w\n--- error log tail ---\n%s", s.index, s.port, err, tailFile(s.ErrorLogPath(), 30))
	}
	return nil
}

func (s *Server) waitReady(p *process) error {
	cfg := s.config(nil)
	cfg.Timeout = time.Second
	cfg.ReadTimeout = 2 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("connector: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(StartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("mariadbd exited during start-up: %v", p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lastErr = db.PingContext(ctx)
		cancel()
		if lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %w", StartTimeout, lastErr)
}

func (s *Server) cleanup() {
	s.mu.Lock()
	p, db := s.proc, s.adminDB
	s.adminDB = nil
	s.mu.Unlock()
	if db != nil {
		db.Close()
	}
	if p != nil {
		p.kill()
	}
}

// Index returns the server's position in its cluster.
func (s *Server) Index() int { return s.index }

// ServerID returns @@server_id (index+1).
func (s *Server) ServerID() int { return s.index + 1 }

// Port returns the TCP port.
func (s *Server) Port() int { return s.port }

// Host returns the IPv4 address clients use: 127.0.0.1, or the namespaced host's address.
func (s *Server) Host() string {
	if s.host != nil {
		return s.host.IPv4
	}
	return "127.0.0.1"
}

// Host6 returns the IPv6 address clients use: ::1, or the namespaced host's fd00:5eed:: one.
func (s *Server) Host6() string {
	if s.host != nil {
		return s.host.IPv6
	}
	return "::1"
}

// Addr returns Host():Port().
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// Addr6 returns [Host6()]:Port().
func (s *Server) Addr6() string { return net.JoinHostPort(s.Host6(), strconv.Itoa(s.port)) }

// Dir returns the server's directory (datadir is Dir()/data).
func (s *Server) Dir() string { return s.dir }

// ErrorLogPath returns the path of the server's error log.
func (s *Server) ErrorLogPath() string { return filepath.Join(s.dir, "error.log") }

// ErrorLog returns the last lines of the error log.
func (s *Server) ErrorLog() string { return tailFile(s.ErrorLogPath(), 40) }

// Pid returns the process id of the running mariadbd, 0 when not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// DSNOption adjusts the connection configuration of DSN, Config and DB.
type DSNOption func(*dsnConfig)

type dsnConfig struct {
	ipv6 bool
	cfg  *mysql.Config
}

// OverIPv6 connects to Addr6 ([::1]:port or the host's IPv6 address).
func OverIPv6() DSNOption { return func(c *dsnConfig) { c.ipv6 = true } }

// WithTimeouts sets the connect and read/write timeouts.
func WithTimeouts(connect, rw time.Duration) DSNOption {
	return func(c *dsnConfig) {
		c.cfg.Timeout, c.cfg.ReadTimeout, c.cfg.WriteTimeout = connect, rw, rw
	}
}

// WithDatabase selects a default database.
func WithDatabase(name string) DSNOption { return func(c *dsnConfig) { c.cfg.DBName = name } }

// WithUser connects as another user.
func WithUser(user, password string) DSNOption {
	return func(c *dsnConfig) { c.cfg.User, c.cfg.Passwd = user, password }
}

// Config returns the go-sql-driver configuration for root over TCP.
func (s *Server) Config(opts ...DSNOption) *mysql.Config { return s.config(opts) }

func (s *Server) config(opts []DSNOption) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd = RootUser, RootPassword
	c.Net = "tcp"
	c.Timeout = 5 * time.Second
	c.ReadTimeout = 30 * time.Second
	c.WriteTimeout = 30 * time.Second
	d := dsnConfig{cfg: c}
	for _, o := range opts {
		o(&d)
	}
	c.Addr = s.Addr()
	if d.ipv6 {
		c.Addr = s.Addr6()
	}
	return c
}

// DSN returns a go-sql-driver DSN for root over TCP (it holds the password: never log it).
func (s *Server) DSN(opts ...DSNOption) string { return s.config(opts).FormatDSN() }

// DB returns a new *sql.DB as root over TCP, closed when the test ends.
func (s *Server) DB(t testing.TB, opts ...DSNOption) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(s.config(opts))
	if err != nil {
		t.Fatalf("testenv: server %d: %v", s.index, err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func (s *Server) admin() *sql.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminDB == nil {
		conn, err := mysql.NewConnector(s.config(nil))
		if err != nil {
			panic(err) // static config: cannot fail
		}
		s.adminDB = sql.OpenDB(conn)
		s.adminDB.SetMaxIdleConns(1)
	}
	return s.adminDB
}

// Exec runs a statement as root, failing the test on error.
func (s *Server) Exec(t testing.TB, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.admin().ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("testenv: server %d: %s: %v", s.index, query, err)
	}
}

// QueryString runs a query returning one value (NULL as ""), failing the test on error.
func (s *Server) QueryString(t testing.TB, query string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v sql.NullString
	err := s.admin().QueryRowContext(ctx, query, args...).Scan(&v)
	if errors.Is(err, mysql.ErrInvalidConn) {
		// The pooled connection was ended under it (a fence or an isolation kills every
		// client, this one included): a read is safe to ask again on a new one.
		err = s.admin().QueryRowContext(ctx, query, args...).Scan(&v)
	}
	if err != nil {
		t.Fatalf("testenv: server %d: %s: %v", s.index, query, err)
	}
	return v.String
}

// Kill sends SIGKILL and waits until the process is reaped.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Stop freezes the process (SIGSTOP) and returns once all its threads are stopped: the
// port stays open (the kernel still accepts connections), nothing answers.
func (s *Server) Stop() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	if err := waitThreadsStopped(s.Pid(), 5*time.Second); err != nil {
		s.t.Fatalf("testenv: server %d: %v", s.index, err)
	}
}

// waitThreadsStopped waits until every thread of pid is in state T (stopped): SIGSTOP
// delivery is asynchronous and a running thread may still answer a query meanwhile.
func waitThreadsStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("wait stopped %d: no threads (%v)", pid, err)
		}
		all := true
		for _, p := range tasks {
			b, err := os.ReadFile(p)
			if err != nil {
				continue // thread exited
			}
			// "pid (comm) S ...": the state follows the last ')'.
			i := strings.LastIndexByte(string(b), ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait stopped %d: threads still running after %v", pid, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Cont resumes a stopped process (SIGCONT).
func (s *Server) Cont() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("testenv: server %d: %v", s.index, errNotRunning)
	}
	if err := p.signal(sig); err != nil {
		s.t.Fatalf("testenv: server %d: %v", s.index, err)
	}
}

// Running reports whether the mariadbd process is alive (possibly stopped).
func (s *Server) Running() bool { return s.Pid() != 0 }

// Shutdown stops the server gracefully (SIGTERM; SIGKILL after 30 s) and waits for it.
func (s *Server) Shutdown() {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil && !p.terminate(30*time.Second) {
		s.t.Logf("testenv: server %d ignored SIGTERM for 30s; killed", s.index)
	}
}

// Restart starts the server again on the same datadir, port and options (shutting it
// down gracefully first if it runs) and waits until it answers. Runtime settings made with
// SET GLOBAL (read_only, ...) are not kept; replication resumes from the datadir.
func (s *Server) Restart() {
	s.t.Helper()
	if s.Running() {
		s.Shutdown()
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: restart: %v", err)
	}
}

// setupReplication points every replica at Servers[0] (or at its Tree parent) and waits
// for running threads.
func (c *Cluster) setupReplication() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(c.Servers))
	var wg sync.WaitGroup
	for i, r := range c.Replicas() {
		src := c.Master()
		if c.cfg.parents != nil {
			src = c.Servers[c.cfg.parents[i+1]]
		}
		host := src.Host()
		if c.cfg.replIPv6 {
			host = src.Host6()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.replicateFrom(ctx, host, src.port, !c.cfg.defaults)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) replicateFrom(ctx context.Context, host string, port int, tuned bool) error {
	db := s.admin()
	timing := ""
	if tuned {
		timing = ", MASTER_HEARTBEAT_PERIOD=1"
	}
	stmts := []string{
		"CHANGE MASTER TO MASTER_HOST=" + sqlString(host) +
			", MASTER_PORT=" + strconv.Itoa(port) +
			", MASTER_USER=" + sqlString(ReplUser) +
			", MASTER_PASSWORD=" + sqlString(ReplPassword) +
			", MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1" + timing,
		"START SLAVE",
		"SET GLOBAL read_only=1",
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			// The statement holds the replication password: name it, do not print it.
			return fmt.Errorf("server %d: replication set-up: %s: %w", s.index, strings.Fields(q)[0], err)
		}
	}
	return s.waitReplicating(ctx)
}

func (s *Server) waitReplicating(ctx context.Context) error {
	for {
		st, err := s.slaveStatus(ctx)
		if err == nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server %d: replication not running (io=%q sql=%q err=%v %s %s): %w", s.index,
				st["Slave_IO_Running"], st["Slave_SQL_Running"], err, st["Last_IO_Error"], st["Last_SQL_Error"], ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SlaveStatus returns the default connection's SHOW SLAVE STATUS row by column name, nil
// when the server does not replicate.
func (s *Server) SlaveStatus(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.slaveStatus(ctx)
	if err != nil {
		t.Fatalf("testenv: server %d: %v", s.index, err)
	}
	return st
}

func (s *Server) slaveStatus(ctx context.Context) (map[string]string, error) {
	rows, err := s.admin().QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("show slave status: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("show slave status: %w", err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("show slave status: %w", err)
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}

// WaitSync waits until every running replica has applied the master's @@gtid_binlog_pos.
func (c *Cluster) WaitSync(t testing.TB) {
	t.Helper()
	pos := c.Master().QueryString(t, "SELECT @@gtid_binlog_pos")
	for _, r := range c.Replicas() {
		if got := r.QueryString(t, "SELECT MASTER_GTID_WAIT(?, 20)", pos); got != "0" {
			t.Fatalf("testenv: server %d did not reach %s within 20s (MASTER_GTID_WAIT=%q)", r.index, pos, got)
		}
	}
}

// ownerFile in a cluster directory holds the pid of the test process that owns it.
const ownerFile = "owner.pid"

var sweepOnce sync.Once

// sweepStaleDirs removes cluster directories left by test processes that were killed before
// their cleanup ran (their mariadbd children died with them, by Pdeathsig).
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "rmp*", ownerFile))
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			os.RemoveAll(filepath.Dir(f))
		}
	}
}
