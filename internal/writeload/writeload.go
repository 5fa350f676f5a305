// Package writeload puts a real write load on test servers (Debian's sysbench,
// oltp_write_only on small tables) and compares servers' data by table checksums, for the
// backup and reseed tests.
package writeload

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// Schema is the database sysbench writes to.
const Schema = "sbtest"

func args(t testing.TB, s *testenv.Server, tables, rows, threads int) []string {
	return []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
		"--mysql-port=" + strconv.Itoa(s.Port()), "--mysql-user=" + testenv.RootUser,
		"--mysql-password=" + testenv.RootPassword, "--mysql-db=" + Schema,
		"--tables=" + strconv.Itoa(tables), "--table-size=" + strconv.Itoa(rows),
		"--threads=" + strconv.Itoa(threads)}
}

// Prepare creates the sbtest schema and its tables on s (the master).
func Prepare(t testing.TB, s *testenv.Server, tables, rows int) {
	t.Helper()
	bin := realtest.LookPath(t, "sysbench", "sysbench")
	s.Exec(t, "CREATE DATABASE IF NOT EXISTS "+Schema)
	out, err := exec.Command(bin, append(args(t, s, tables, rows, 1), "prepare")...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysbench prepare: %v: %s", err, tail(string(out)))
	}
}

// Load is a running sysbench.
type Load struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  strings.Builder
	err  error
	once sync.Once
}

// Start runs sysbench writes on s for at most d (a bound: Stop ends it sooner).
func Start(t testing.TB, s *testenv.Server, tables, rows, threads int, d time.Duration) *Load {
	t.Helper()
	bin := realtest.LookPath(t, "sysbench", "sysbench")
	a := append(args(t, s, tables, rows, threads), "--time="+strconv.Itoa(int(d.Seconds())+1), "--report-interval=0",
		"--mysql-ignore-errors=all", "run")
	l := &Load{cmd: exec.Command(bin, a...), done: make(chan struct{})}
	l.cmd.Stdout, l.cmd.Stderr = &l.out, &l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("sysbench run: %v", err)
	}
	go func() { l.err = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for it.
func (l *Load) Stop() {
	l.once.Do(func() {
		l.cmd.Process.Kill()
		<-l.done
	})
}

// Transactions returns how many transactions sysbench reported (after Stop: 0, it was killed).
func (l *Load) Output() string { <-l.done; return l.out.String() }

func tail(s string) string {
	if len(s) > 800 {
		return s[len(s)-800:]
	}
	return s
}

// Open returns a mariadb handle on a test server as root.
func Open(t testing.TB, s *testenv.Server) *mariadb.Server {
	t.Helper()
	srv, err := mariadb.Open(ipv6.HostPort{Host: "127.0.0.1", Port: s.Port()}, testenv.RootUser, testenv.RootPassword, mariadb.Options{ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Checksums returns the table checksums of every user table of s.
func Checksums(t testing.TB, s *testenv.Server) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := Open(t, s).TableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// StopAt makes replica r apply exactly up to pos and stop there (START SLAVE UNTIL
// master_gtid_pos), and waits for it: r then holds the data of that position. Call it on a
// replica whose replication is stopped and behind pos.
func StopAt(t testing.TB, r *testenv.Server, pos string) {
	t.Helper()
	r.Exec(t, "STOP SLAVE")
	r.Exec(t, "START SLAVE UNTIL master_gtid_pos = '"+strings.ReplaceAll(pos, "'", "")+"'")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r.QueryString(t, "SELECT @@gtid_slave_pos") == pos {
			st := r.SlaveStatus(t)
			if st["Slave_SQL_Running"] == "No" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replica did not stop at %s: at %s", pos, r.QueryString(t, "SELECT @@gtid_slave_pos"))
}

// Equal fails the test unless two checksum maps are equal and not empty.
func Equal(t testing.TB, what string, want, got map[string]int64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the reference holds no table", what)
	}
	if len(want) != len(got) {
		t.Fatalf("%s: %d tables, want %d (%v vs %v)", what, len(got), len(want), got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: table %s checksum %d, want %d", what, k, got[k], v)
		}
	}
}
