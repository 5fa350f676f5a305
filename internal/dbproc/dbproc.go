// Package dbproc runs MariaDB servers as child processes of this machine, for the `local`
// orchestrator, the demo and the tests. It initialises a data directory with the system
// tables and accounts, starts mariadbd, and stops it; every process is owned by an exec.Cmd
// waited on by its own goroutine (no pid polling, no zombie).
package dbproc

import (
	"bytes"
	"context"
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
	"time"
)

// Paths of Debian's MariaDB, overridable for unusual layouts.
var (
	MariadbdPath = envOr("RMP_MARIADBD", "/usr/sbin/mariadbd")
	SQLShare     = envOr("RMP_MARIADB_SHARE", "/usr/share/mysql")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Account is a user created at bootstrap, with sql_log_bin=0 so it never becomes an errant
// transaction on replicas.
type Account struct {
	User, Host, Password string
	Grants               string // e.g. "ALL PRIVILEGES ON *.* ... WITH GRANT OPTION" (without TO)
}

// SmallFootprint are storage options for demos and tests: little memory, fast start, no
// fsync (a SIGKILL loses nothing, a power loss would).
var SmallFootprint = []string{
	"--innodb-buffer-pool-size=16M",
	"--innodb-log-file-size=4M",
	"--innodb-log-buffer-size=1M",
	"--innodb-flush-method=nosync",
	"--innodb-doublewrite=0",
	"--innodb-flush-log-at-trx-commit=2",
	"--loose-innodb-use-native-aio=0",
	"--performance-schema=0",
}

// Bootstrap fills an empty data directory with MariaDB's system tables (without help tables
// and sys schema, which cost seconds) and the accounts. extra are mariadbd options the
// servers will run with (storage options must match).
func Bootstrap(ctx context.Context, datadir string, extra []string, accounts []Account) error {
	// A private tmpdir: mariadbd removes stray #sql files of its tmpdir when it starts, which
	// would delete the temporary tables of another server bootstrapping at the same time.
	tmp := filepath.Join(filepath.Dir(datadir), "tmp")
	for _, d := range []string{datadir, tmp} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("bootstrap %s: %w", datadir, err)
		}
	}
	var sqlText bytes.Buffer
	sqlText.WriteString("CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n")
	for _, s := range []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"} {
		b, err := os.ReadFile(filepath.Join(SQLShare, s))
		if err != nil {
			return fmt.Errorf("bootstrap: MariaDB's SQL scripts (Debian package mariadb-server): %w", err)
		}
		sqlText.Write(b)
		sqlText.WriteString("\n")
	}
	sqlText.WriteString(AccountsSQL(accounts))
	args := append([]string{"--no-defaults", "--bootstrap", "--datadir=" + datadir, "--tmpdir=" + tmp,
		"--log-warnings=0", "--skip-log-bin", "--max-allowed-packet=8M", "--net-buffer-length=16K"}, extra...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, MariadbdPath, args...)
	cmd.Stdin = &sqlText
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bootstrap %s: %w: %s", datadir, err, lastLines(out.String(), 15))
	}
	if strings.Contains(out.String(), "[ERROR]") {
		return fmt.Errorf("bootstrap %s: %s", datadir, lastLines(out.String(), 15))
	}
	return nil
}

// AccountsSQL is the SQL creating the accounts (binlog off), after removing the anonymous
// and password-less accounts the system tables script leaves.
func AccountsSQL(accounts []Account) string {
	lines := []string{
		"FLUSH PRIVILEGES;",
		"SET sql_log_bin=0;",
		"DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host NOT IN ('localhost'));",
		"FLUSH PRIVILEGES;",
	}
	for _, a := range accounts {
		host := a.Host
		if host == "" {
			host = "%"
		}
		verb := "CREATE USER"
		if a.User == "root" && host == "localhost" {
			verb = "ALTER USER"
		}
		lines = append(lines, fmt.Sprintf("%s %s@%s IDENTIFIED BY %s;", verb, QuoteString(a.User), QuoteString(host), QuoteString(a.Password)))
		if a.Grants != "" {
			grant := strings.Replace(a.Grants, " WITH GRANT OPTION", "", 1)
			suffix := ""
			if grant != a.Grants {
				suffix = " WITH GRANT OPTION"
			}
			lines = append(lines, fmt.Sprintf("GRANT %s TO %s@%s%s;", grant, QuoteString(a.User), QuoteString(host), suffix))
		}
	}
	return strings.Join(append(lines, ""), "\n")
}

// QuoteString quotes s as a MariaDB string literal.
func QuoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// DB describes one server to run.
type DB struct {
	Dir      string   // holds data/, error.log, mysqld.sock, mysqld.pid
	Port     int      // TCP port
	Bind     []string // bind addresses, e.g. 127.0.0.1 and ::1
	ServerID int
	Args     []string // more mariadbd options (e.g. SmallFootprint)
}

// Process is a running mariadbd.
type Process struct {
	db   DB
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// DataDir is the server's data directory.
func (d DB) DataDir() string { return filepath.Join(d.Dir, "data") }

// TmpDir is the server's private tmpdir (created by Bootstrap).
func (d DB) TmpDir() string { return filepath.Join(d.Dir, "tmp") }

// Socket is the server's unix socket.
func (d DB) Socket() string { return filepath.Join(d.Dir, "mysqld.sock") }

// ErrorLog is the server's error log.
func (d DB) ErrorLog() string { return filepath.Join(d.Dir, "error.log") }

func (d DB) args() []string {
	bind := d.Bind
	if len(bind) == 0 {
		bind = []string{"127.0.0.1", "::1"}
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + d.DataDir(),
		"--tmpdir=" + d.TmpDir(),
		"--port=" + strconv.Itoa(d.Port),
		"--bind-address=" + strings.Join(bind, ","),
		"--socket=" + d.Socket(),
		"--pid-file=" + filepath.Join(d.Dir, "mysqld.pid"),
		"--log-error=" + d.ErrorLog(),
		"--server-id=" + strconv.Itoa(d.ServerID),
		"--log-bin=" + filepath.Join(d.DataDir(), "binlog"),
		"--log-slave-updates",
		"--binlog-format=ROW",
		"--gtid-strict-mode=1",
		"--skip-name-resolve",
		"--max-connections=200",
	}
	args = append(args, d.Args...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return args
}

// Start runs mariadbd and waits until it accepts TCP connections (or fails, with the end of
// its error log).
func Start(ctx context.Context, d DB) (*Process, error) {
	cmd := exec.Command(MariadbdPath, d.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd in %s: %w", d.Dir, err)
	}
	p := &Process{db: d, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port))
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("mariadbd in %s exited: %v: %s", d.Dir, p.Err(), tailFile(d.ErrorLog(), 15))
		case <-ctx.Done():
			p.Kill()
			return nil, fmt.Errorf("mariadbd in %s not ready: %w: %s", d.Dir, ctx.Err(), tailFile(d.ErrorLog(), 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Err is the process's exit error once it ended.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop asks mariadbd to shut down (SIGTERM) and waits up to timeout before killing it.
func (p *Process) Stop(timeout time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Kill ends mariadbd at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errNoLog = errors.New("no error log")

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return errNoLog.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
