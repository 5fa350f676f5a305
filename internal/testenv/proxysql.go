package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/realtest"
)

// ProxySQL has no Debian package: the tests use the binary built in
// ../shared/tools/proxysql/ beside the repository (CI has it there too), unless PROXYSQL_BIN
// names another one or a proxysql is found in PATH.
const sharedProxySQL = "../shared/tools/proxysql/proxysql"

// ProxySQLPath finds the proxysql binary: $PROXYSQL_BIN, else ../shared/tools/proxysql/proxysql
// from the repository root (the directory holding go.mod, searched upwards from the
// working directory), else proxysql in PATH.
func ProxySQLPath() (string, error) {
	if p := os.Getenv("PROXYSQL_BIN"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("PROXYSQL_BIN=%s: %w", p, err)
		}
		return path, nil
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, sharedProxySQL)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	path, err := exec.LookPath("proxysql")
	if err != nil {
		return "", fmt.Errorf("proxysql not found: not at %s beside the repository, PROXYSQL_BIN unset, none in PATH", sharedProxySQL)
	}
	return path, nil
}

// repoRoot is the nearest directory above the working directory that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// RequireProxySQL returns the proxysql binary (ProxySQLPath). It skips the test under
// -short, and when no binary is found, saying where it was looked for (a failure under CI
// or RMP_REQUIRE_REAL=1: realtest.Missing).
func RequireProxySQL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-proxysql test in -short mode")
	}
	p, err := ProxySQLPath()
	if err != nil {
		realtest.Missing(t, "%v; ProxySQL is not packaged in Debian: build it from sysown/proxysql (v2.7.1) and set PROXYSQL_BIN", err)
	}
	return p
}

// ProxySQL is a proxysql process owned by a test, started as SlapOS starts it:
// `proxysql -f -c <Dir>/proxysql.cnf -D <Datadir>`. NewProxySQL picks its ports and admin
// credentials; the test renders its proxysql.cnf with them (usually with
// proxysql.GenerateConfig) and calls Start.
//
// The admin credentials go into the cnf only, never on the command line. The process gets
// SIGKILL if the test binary dies (Pdeathsig); Cleanup kills it and removes Dir, and a
// directory left by a killed test process is swept like a cluster's (owner.pid).
type ProxySQL struct {
	Dir        string // directory of the instance: proxysql.cnf and the datadir
	Datadir    string // -D: proxysql.db, the generated TLS files, the unix sockets
	ConfigPath string // -c
	AdminPort  int    // mysql_ifaces port
	Port       int    // interfaces port (clients)
	AdminUser  string
	// AdminPassword is random, for this instance only.
	AdminPassword string

	t    testing.TB
	bin  string
	mu   sync.Mutex
	proc *process
	out  *syncBuffer
	args []string
}

// NewProxySQL prepares an instance: a directory with an empty datadir, two free ports
// (free on both 127.0.0.1 and ::1) and admin credentials. Nothing runs until Start.
func NewProxySQL(t testing.TB) *ProxySQL {
	t.Helper()
	bin := RequireProxySQL(t)
	sweepOnce.Do(sweepStaleDirs)
	dir, err := os.MkdirTemp("", "rmp")
	if err != nil {
		t.Fatalf("testenv: proxysql: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatalf("testenv: proxysql: %v", err)
	}
	p := &ProxySQL{
		Dir: dir, Datadir: filepath.Join(dir, "data"), ConfigPath: filepath.Join(dir, "proxysql.cnf"),
		AdminPort: FreePort(t), Port: FreePort(t), AdminUser: "rmp-admin", AdminPassword: randomSecret(),
		t: t, bin: bin, out: &syncBuffer{},
	}
	t.Cleanup(func() {
		p.Kill()
		os.RemoveAll(dir)
	})
	if err := os.MkdirAll(p.Datadir, 0o750); err != nil {
		t.Fatalf("testenv: proxysql: %v", err)
	}
	return p
}

func randomSecret() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// StartProxySQLTimeout bounds a start: process start to the admin interface answering on
// 127.0.0.1 and [::1] and the clients' port accepting on both.
const StartProxySQLTimeout = 30 * time.Second

// Start writes cnf to ConfigPath (mode 0600: it holds the admin password) and runs
// proxysql on it and Datadir, in the foreground, with args appended (e.g. "--reload").
// It returns once the admin interface answers a query on 127.0.0.1 and [::1] and the
// clients' port accepts connections on both; the cnf must bind them there
// (interfaces and mysql_ifaces "[::1]:port;127.0.0.1:port", as proxysql.GenerateConfig
// writes with BindIPv4 127.0.0.1 and BindIPv6 ::1).
func (p *ProxySQL) Start(cnf []byte, args ...string) {
	p.t.Helper()
	if err := os.WriteFile(p.ConfigPath, cnf, 0o600); err != nil {
		p.t.Fatalf("testenv: proxysql: %v", err)
	}
	p.start(args)
}

// Restart starts proxysql again on the same cnf and datadir, killing it first if it runs
// (SIGKILL, as a crash: nothing is saved on the way out). args replace those of the
// previous start: Restart("--reload") merges a changed cnf into the existing database,
// Restart() uses the database as it is (ProxySQL reads the cnf only when proxysql.db is
// absent). WriteConfig changes the cnf in between.
func (p *ProxySQL) Restart(args ...string) {
	p.t.Helper()
	p.Kill()
	p.start(args)
}

// WriteConfig replaces the cnf on disk without restarting (for Restart).
func (p *ProxySQL) WriteConfig(cnf []byte) {
	p.t.Helper()
	if err := os.WriteFile(p.ConfigPath, cnf, 0o600); err != nil {
		p.t.Fatalf("testenv: proxysql: %v", err)
	}
}

func (p *ProxySQL) start(args []string) {
	p.t.Helper()
	p.args = args
	cmd := exec.Command(p.bin, append([]string{"-f", "-c", p.ConfigPath, "-D", p.Datadir}, args...)...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	proc, err := startProcess(cmd)
	if err != nil {
		p.t.Fatalf("testenv: proxysql: %v", err)
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
	if err := p.waitReady(proc); err != nil {
		proc.kill()
		p.t.Fatalf("testenv: proxysql (admin port %d, port %d): %v\n--- output ---\n%s", p.AdminPort, p.Port, err, p.Output())
	}
}

func (p *ProxySQL) waitReady(proc *process) error {
	deadline := time.Now().Add(StartProxySQLTimeout)
	for _, host := range []string{"127.0.0.1", "::1"} {
		db := p.adminDB(host, time.Second)
		err := func() error {
			defer db.Close()
			var lastErr error
			for time.Now().Before(deadline) {
				if proc.exited() {
					return fmt.Errorf("proxysql exited during start-up: %v", proc.err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var one int
				lastErr = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
				cancel()
				if lastErr == nil {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
			return fmt.Errorf("admin interface on %s not answering after %v: %w", host, StartProxySQLTimeout, lastErr)
		}()
		if err != nil {
			return err
		}
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, strconv.Itoa(p.Port))
		for {
			c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if proc.exited() {
				return fmt.Errorf("proxysql exited during start-up: %v", proc.err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("clients' port %s not accepting: %w", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (p *ProxySQL) adminDB(host string, timeout time.Duration) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net = p.AdminUser, p.AdminPassword, "tcp"
	c.Addr = net.JoinHostPort(host, strconv.Itoa(p.AdminPort))
	c.Timeout, c.ReadTimeout, c.WriteTimeout = timeout, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		panic(err) // static configuration: cannot fail
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db
}

// AdminDB returns a connection pool to the admin interface over 127.0.0.1 (or [::1] with
// v6), closed when the test ends. The admin interface takes no prepared statement: pass
// literal SQL, without arguments.
func (p *ProxySQL) AdminDB(t testing.TB, v6 bool) *sql.DB {
	host := "127.0.0.1"
	if v6 {
		host = "::1"
	}
	db := p.adminDB(host, 2*time.Second)
	t.Cleanup(func() { db.Close() })
	return db
}

// AdminAddr is the admin interface's address: 127.0.0.1:AdminPort, or [::1]:AdminPort.
func (p *ProxySQL) AdminAddr(v6 bool) string { return joinLoopback(v6, p.AdminPort) }

// Addr is the clients' address: 127.0.0.1:Port, or [::1]:Port.
func (p *ProxySQL) Addr(v6 bool) string { return joinLoopback(v6, p.Port) }

func joinLoopback(v6 bool, port int) string {
	if v6 {
		return net.JoinHostPort("::1", strconv.Itoa(port))
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// Output returns proxysql's output (it logs to stdout in the foreground) since NewProxySQL,
// across restarts.
func (p *ProxySQL) Output() string { return p.out.String() }

// Pid returns the running proxysql's process id, 0 when not running.
func (p *ProxySQL) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil || p.proc.exited() {
		return 0
	}
	return p.proc.cmd.Process.Pid
}

// Running reports whether proxysql is alive (possibly stopped).
func (p *ProxySQL) Running() bool { return p.Pid() != 0 }

// Kill sends SIGKILL and waits until the process is reaped (also done at test end).
func (p *ProxySQL) Kill() {
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc != nil {
		proc.kill()
	}
}

// Stop freezes proxysql (SIGSTOP) and returns once all its threads are stopped: its ports
// still accept TCP connections (the kernel completes handshakes), nothing answers.
func (p *ProxySQL) Stop() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
	if err := waitThreadsStopped(p.Pid(), 5*time.Second); err != nil {
		p.t.Fatalf("testenv: proxysql: %v", err)
	}
}

// Cont resumes a stopped proxysql (SIGCONT).
func (p *ProxySQL) Cont() { p.signal(syscall.SIGCONT) }

func (p *ProxySQL) signal(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc == nil {
		p.t.Fatalf("testenv: proxysql: %v", errNotRunning)
	}
	if err := proc.signal(sig); err != nil {
		p.t.Fatalf("testenv: proxysql: %v", err)
	}
}
