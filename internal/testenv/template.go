package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials created in every test server. They are test-only secrets on loopback or
// namespaced test addresses.
const (
	RootUser     = "root"
	RootPassword = "rmp-root-pw"
	ReplUser     = "repl"
	ReplPassword = "rmp-repl-pw"
)

// templateRevision changes whenever the template's content (users, options) changes, so a
// cached template of an older revision is never reused.
const templateRevision = "3"

// mariadbd and friends, overridable through the environment for unusual layouts.
var (
	mariadbdPath  = envOr("RMP_MARIADBD", "/usr/sbin/mariadbd")
	installDBPath = envOr("RMP_MARIADB_INSTALL_DB", "mariadb-install-db")
	sqlSharePath  = envOr("RMP_MARIADB_SHARE", "/usr/share/mysql")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// RequireMariaDB skips the test when mariadbd is not installed or under -short.
func RequireMariaDB(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	if _, err := exec.LookPath(mariadbdPath); err != nil {
		t.Skipf("mariadbd not installed (%s): %v; install Debian's mariadb-server", mariadbdPath, err)
	}
}

// innodbArgs are the storage options shared by the template bootstrap and the servers;
// they favour start-up speed and a small footprint over durability against power loss
// (a SIGKILL loses nothing: writes reach the page cache).
var innodbArgs = []string{
	"--innodb-buffer-pool-size=16M",
	"--innodb-log-file-size=4M",
	"--innodb-log-buffer-size=1M",
	"--innodb-flush-method=nosync",
	"--innodb-doublewrite=0",
	"--innodb-flush-log-at-trx-commit=2",
	"--loose-innodb-use-native-aio=0",
	"--innodb-read-io-threads=1",
	"--innodb-write-io-threads=1",
}

var (
	tplOnce sync.Once
	tplDir  string
	tplErr  error
)

// templateDataDir returns a ready datadir (system tables and test users) to copy for each
// server. It is built once per machine and mariadbd version and kept under os.TempDir;
// concurrent test processes race harmlessly (build aside, then rename).
func templateDataDir() (string, error) {
	tplOnce.Do(func() { tplDir, tplErr = buildTemplate() })
	return tplDir, tplErr
}

func buildTemplate() (string, error) {
	ver, err := run(10*time.Second, mariadbdPath, "--version")
	if err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	sum := sha256.Sum256([]byte(templateRevision + "\x00" + strings.TrimSpace(ver) + "\x00" + strings.Join(innodbArgs, " ")))
	final := filepath.Join(os.TempDir(), "rmp-template-"+hex.EncodeToString(sum[:6]))
	if st, err := os.Stat(filepath.Join(final, "data", "mysql")); err == nil && st.IsDir() {
		return filepath.Join(final, "data"), nil
	}
	build, err := os.MkdirTemp("", "rmp-template-build")
	if err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	defer os.RemoveAll(build) // no-op after a successful rename
	data := filepath.Join(build, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	if err := bootstrap(data); err != nil {
		return "", err
	}
	if err := os.Rename(build, final); err != nil {
		// Another process won the race: use its template.
		if st, serr := os.Stat(filepath.Join(final, "data", "mysql")); serr == nil && st.IsDir() {
			return filepath.Join(final, "data"), nil
		}
		return "", fmt.Errorf("template: rename %s: %w", final, err)
	}
	return filepath.Join(final, "data"), nil
}

// usersSQL creates the test users. Bootstrap runs without a binary log; sql_log_bin=0
// states the intent anyway (users must never become errant GTIDs on replicas).
func usersSQL() string {
	return strings.Join([]string{
		"FLUSH PRIVILEGES;",
		"SET sql_log_bin=0;",
		// The system tables' data script creates password-less root@127.0.0.1/::1/<hostname>;
		// they would shadow root@'%'.
		"DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host NOT IN ('localhost'));",
		"FLUSH PRIVILEGES;",
		fmt.Sprintf("ALTER USER 'root'@'localhost' IDENTIFIED BY %s;", sqlString(RootPassword)),
		fmt.Sprintf("CREATE USER 'root'@'%%' IDENTIFIED BY %s;", sqlString(RootPassword)),
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
		fmt.Sprintf("CREATE USER %s@'%%' IDENTIFIED BY %s;", sqlString(ReplUser), sqlString(ReplPassword)),
		fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.* TO %s@'%%';", sqlString(ReplUser)),
		"",
	}, "\n")
}

// bootstrap fills datadir with the system tables (without the help tables and the sys
// schema, which cost seconds and no test needs) and the users. Falls back to
// mariadb-install-db when the SQL scripts are not where Debian puts them.
func bootstrap(datadir string) error {
	scripts := []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"}
	var sqlText bytes.Buffer
	sqlText.WriteString("CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n")
	direct := true
	for _, s := range scripts {
		b, err := os.ReadFile(filepath.Join(sqlSharePath, s))
		if err != nil {
			direct = false
			break
		}
		sqlText.Write(b)
		sqlText.WriteString("\n")
	}
	if !direct {
		return installDB(datadir)
	}
	sqlText.WriteString(usersSQL())
	args := append([]string{"--no-defaults", "--bootstrap", "--datadir=" + datadir,
		"--log-warnings=0", "--skip-log-bin", "--max-allowed-packet=8M", "--net-buffer-length=16K"}, innodbArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(mariadbdPath, args...)
	cmd.Stdin = &sqlText
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("template bootstrap: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.kill()
		return fmt.Errorf("template bootstrap: timed out: %s", lastLines(out.String(), 20))
	}
	if p.err != nil {
		return fmt.Errorf("template bootstrap: %w: %s", p.err, lastLines(out.String(), 20))
	}
	if strings.Contains(out.String(), "[ERROR]") {
		return fmt.Errorf("template bootstrap: %s", lastLines(out.String(), 20))
	}
	return nil
}

func installDB(datadir string) error {
	f, err := os.CreateTemp("", "rmp-users-*.sql")
	if err != nil {
		return fmt.Errorf("template: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(usersSQL()); err != nil {
		f.Close()
		return fmt.Errorf("template: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + datadir, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve", "--extra-file=" + f.Name()}, innodbArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if _, err := run(3*time.Minute, installDBPath, args...); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sqlString quotes s as a MariaDB string literal (backslash and quote escaped).
func sqlString(s string) string {
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

var errNotRunning = errors.New("server not running")
