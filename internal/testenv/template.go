package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
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
const templateRevision = "4"

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

// RequireMariaDB skips the test under -short, and when mariadbd is not installed (a failure
// under CI or RMP_REQUIRE_REAL=1: realtest.Missing).
func RequireMariaDB(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	realtest.LookPath(t, mariadbdPath, "mariadb-server")
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

// testAccounts are the users of every test server (created with sql_log_bin=0 by
// dbproc.AccountsSQL, so they never become errant GTIDs on replicas).
var testAccounts = []dbproc.Account{
	{User: "root", Host: "localhost", Password: RootPassword},
	{User: "root", Host: "%", Password: RootPassword, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
	{User: ReplUser, Host: "%", Password: ReplPassword, Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"},
}

func usersSQL() string { return dbproc.AccountsSQL(testAccounts) }

// bootstrap fills datadir with the system tables (without the help tables and the sys
// schema, which cost seconds and no test needs) and the users. Falls back to
// mariadb-install-db when the SQL scripts are not where Debian puts them.
func bootstrap(datadir string) error {
	for _, f := range []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"} {
		if _, err := os.Stat(filepath.Join(sqlSharePath, f)); err != nil {
			return installDB(datadir)
		}
	}
	if err := dbproc.Bootstrap(context.Background(), datadir, innodbArgs, testAccounts); err != nil {
		return fmt.Errorf("template: %w", err)
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

// sqlString quotes s as a MariaDB string literal.
func sqlString(s string) string { return dbproc.QuoteString(s) }

var errNotRunning = errors.New("server not running")
