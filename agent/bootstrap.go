package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"replication-manager-pro/internal/dbproc"
)

// Bootstrapped reports whether the data directory holds the system tables.
func (l Layout) Bootstrapped() bool {
	st, err := os.Stat(filepath.Join(l.DataDir(), "mysql"))
	return err == nil && st.IsDir()
}

// Accounts are the accounts a new partition's server gets, as SlapOS' mariadb_init_root.sql
// creates them: the manager's account (the [client] login of the bundle's dbjob.cnf: the
// cluster's db-servers-credential) on localhost and '%', and the heartbeat account, with the
// same password. Written with the binary log off, so that no replica sees them as errant.
type Accounts struct {
	User, Password string
	HeartbeatUser  string // "" for none
	// RequireSSL adds REQUIRE SSL to the '%' accounts (SlapOS' require-ssl parameter).
	RequireSSL bool
}

// SQL returns the statements creating the accounts. Unlike SlapOS, the heartbeat account
// gets only what the heartbeat needs (its schema), not ALL PRIVILEGES WITH GRANT OPTION,
// and the password-less root accounts of the system tables are removed.
func (a Accounts) SQL() string {
	q := dbproc.QuoteString
	var b strings.Builder
	b.WriteString("FLUSH PRIVILEGES;\nSET sql_log_bin=0;\n")
	b.WriteString("DELETE FROM mysql.global_priv WHERE User='' OR User='root';\nFLUSH PRIVILEGES;\n")
	ssl := ""
	if a.RequireSSL {
		ssl = " REQUIRE SSL"
	}
	for _, host := range []string{"localhost", "%"} {
		req := ""
		if host == "%" {
			req = ssl
		}
		fmt.Fprintf(&b, "CREATE USER %s@%s IDENTIFIED BY %s%s;\n", q(a.User), q(host), q(a.Password), req)
		fmt.Fprintf(&b, "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION;\n", q(a.User), q(host))
		if a.HeartbeatUser != "" && a.HeartbeatUser != a.User {
			fmt.Fprintf(&b, "CREATE USER %s@%s IDENTIFIED BY %s%s;\n", q(a.HeartbeatUser), q(host), q(a.Password), req)
			fmt.Fprintf(&b, "GRANT SELECT, CREATE, CREATE VIEW, SHOW VIEW, DROP ON `replication_manager_schema`.* TO %s@%s;\n", q(a.HeartbeatUser), q(host))
		}
	}
	return b.String()
}

// Bootstrap fills the empty data directory with MariaDB's system tables and the accounts,
// running mariadbd --bootstrap on the bundle's my.cnf (so every path and storage option is
// the one the server will run with), without binary log.
func (l Layout) Bootstrap(ctx context.Context, mariadbd, share string, a Accounts) error {
	if err := os.MkdirAll(l.DataDir(), 0o750); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	var sqlText bytes.Buffer
	sqlText.WriteString("CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n")
	for _, s := range []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"} {
		b, err := os.ReadFile(filepath.Join(share, s))
		if err != nil {
			return fmt.Errorf("bootstrap: MariaDB's SQL scripts (Debian package mariadb-server): %w", err)
		}
		sqlText.Write(b)
		sqlText.WriteString("\n")
	}
	sqlText.WriteString(a.SQL())
	args := []string{"--defaults-file=" + l.MyCnf(), "--bootstrap", "--skip-log-bin", "--log-error=", "--log-warnings=0"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mariadbd, args...)
	cmd.Stdin = &sqlText // the passwords go through stdin, never the arguments
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if err != nil || strings.Contains(out.String(), "[ERROR]") {
		// A half-made data directory would be taken for a bootstrapped one.
		os.RemoveAll(filepath.Join(l.DataDir(), "mysql"))
		return fmt.Errorf("bootstrap %s: %v: %s", l.DataDir(), err, tail(out.String(), 10))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
