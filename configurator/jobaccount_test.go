package configurator

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// TestJobGrantsAreNarrow: nothing an attacker holding dbjob.cnf would want.
func TestJobGrantsAreNarrow(t *testing.T) {
	for _, bad := range []string{"ALL", "GRANT OPTION", "SUPER", "'%'", "CREATE USER ON", "SHUTDOWN", "INSERT", "DELETE", "FILE"} {
		for _, g := range JobGrants {
			if strings.Contains(g, bad) {
				t.Errorf("job grant %q holds %s", g, bad)
			}
		}
	}
}

// TestJobAccountRunsJobs starts mariadbd on a bundle whose dbjob.cnf carries the job
// account, as an anonymous bundle does, and checks that the account does what the dbjobs
// script does (job rows, logical and physical backups, log flushes) on a read-only server
// and nothing an attacker holding dbjob.cnf would want (accounts, variables, user data,
// shutdown).
func TestJobAccountRunsJobs(t *testing.T) {
	requireMariaDB(t)
	client := realtest.LookPath(t, "mariadb", "mariadb-client")
	dump := realtest.LookPath(t, "mariadb-dump", "mariadb-client")
	backup := realtest.LookPath(t, "mariabackup", "mariadb-backup")
	tags := installedOnly(t, strings.Split(slaposTags, ","))
	port := freePort(t)
	const jobPW = "job-pw-0123456789abcdef"
	part := t.TempDir()
	p := Params{
		Cluster: "cluster1", Server: ipv6.HostPort{Host: "127.0.0.1", Port: port},
		Orchestrator: OrchestratorSlapOS, Partition: part, Tags: tags, Resources: DefaultResources(),
		User: JobUser, Password: jobPW, TLS: testTLS(t), Version: "test",
	}
	b, err := Bundle(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Unpack(bytes.NewReader(b), part, filepath.Join(part, "var", "lib", "mysql")); err != nil {
		t.Fatal(err)
	}
	myCnf := filepath.Join(part, "etc", "mysql", "my.cnf")
	jobCnf := filepath.Join(part, "etc", "mysql", "dbjob.cnf")
	bootstrapDatadir(t, myCnf)
	db, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(127.0.0.1:%d)/?timeout=2s&multiStatements=true", testRootPW, port))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop := startServer(t, myCnf, db)
	defer stop()
	// As the manager makes it (slapos.JobAccountKeeper).
	admin, err := mariadb.Open(ipv6.HostPort{Host: "127.0.0.1", Port: port}, "root", testRootPW, mariadb.Options{ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.EnsureJobAccount(ctx, JobUser, JobHost, jobPW, JobGrants); err != nil {
		t.Fatalf("job account: %v", err)
	}
	// Again (the manager's next appearance of the server): same account, nothing fails.
	if err := admin.EnsureJobAccount(ctx, JobUser, JobHost, jobPW, JobGrants); err != nil {
		t.Fatalf("job account made twice: %v", err)
	}
	if _, err := db.Exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO app.t VALUES (1);" +
		"INSERT INTO replication_manager_schema.jobs (task, done, state) VALUES ('mariabackup', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	var ro int
	if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Fatalf("the server should be read-only like a replica: %d %v", ro, err)
	}
	run := func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	}
	sqlAs := func(q string) (string, error) {
		return run(client, "--defaults-file="+jobCnf, "-N", "-e", q)
	}
	// What the jobs need.
	for _, q := range []string{
		"SELECT id, task FROM replication_manager_schema.jobs WHERE done=0",
		"UPDATE replication_manager_schema.jobs SET state=1, result='processing' WHERE task='mariabackup'",
		"UPDATE replication_manager_schema.jobs SET state=3, done=1, end=NOW() WHERE task='mariabackup'",
		"FLUSH ERROR LOGS", "FLUSH SLOW LOGS", "SHOW MASTER STATUS", "SHOW SLAVE STATUS",
	} {
		if out, err := sqlAs(q); err != nil {
			t.Errorf("job account cannot %q: %v %s", q, err, out)
		}
	}
	if out, err := run(dump, "--defaults-file="+jobCnf, "--databases", "app", "replication_manager_schema", "mysql", "--single-transaction", "--events", "--routines",
		"--triggers", "--master-data=2", "--result-file="+filepath.Join(t.TempDir(), "dump.sql")); err != nil {
		t.Errorf("mariadb-dump as the job account: %v %s", err, out)
	}
	target := t.TempDir()
	both := filepath.Join(t.TempDir(), "backup.cnf")
	if err := os.WriteFile(both, []byte("!include "+myCnf+"\n!include "+jobCnf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(backup, "--defaults-file="+both, "--backup", "--slave-info",
		"--target-dir="+target); err != nil {
		t.Errorf("mariabackup as the job account: %v %s", err, lastLines(out, 10))
	}
	// What it must not do.
	for _, q := range []string{
		"CREATE USER 'x'@'%' IDENTIFIED BY 'x'",
		"GRANT ALL ON *.* TO 'repman_job'@'localhost'",
		"SET GLOBAL max_connections=1",
		"SET sql_log_bin=0",
		"PURGE BINARY LOGS BEFORE NOW()",
		"STOP SLAVE",
		"INSERT INTO app.t VALUES (2)",
		"UPDATE app.t SET id=3",
		"DROP DATABASE app",
		"DELETE FROM replication_manager_schema.jobs",
		"SHUTDOWN",
	} {
		if out, err := sqlAs(q); err == nil {
			t.Errorf("job account may %q: %s", q, out)
		}
	}
	if out, err := sqlAs("SELECT LOAD_FILE('/etc/passwd') IS NULL"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("job account reads files: %q %v", out, err)
	}
	// Only through the local socket.
	if out, err := run(client, "--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", port), "-u"+JobUser, "-p"+jobPW, "-e", "SELECT 1"); err == nil {
		t.Errorf("job account logs in over TCP: %s", out)
	}
	if _, err := os.Stat(filepath.Join(target, "xtrabackup_checkpoints")); err != nil {
		t.Errorf("no physical backup: %v", err)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
