package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/agent"
	"replication-manager-pro/backup"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/orchestrator/slapos"
)

// TestSlapOSAgentFlashback plays replication-manager's side of the flashback jobs against a
// partition agent on real mariadbd: a job row per task in the server's jobs table and the
// backup streamed to the row's port. A physical flashback brings back the data of an earlier
// backup of the server itself, with the server at the backup's GTID position, its binary
// log (the transactions made after) emptied and its replica settings kept; a logical one
// does the same from a dump. A flashback whose restored data does not start, and one whose
// dump breaks half-way or stops short (a reseed's too), leave the server running on the data
// it had. zfssnapback is answered as not supported. Each row ends with its result and state.
func TestSlapOSAgentFlashback(t *testing.T) {
	realtest.LookPath(t, "mariadbd", "mariadb-server")
	realtest.LookPath(t, "mariadb-backup", "mariadb-backup")
	realtest.LookPath(t, "mbstream", "mariadb-backup")
	realtest.LookPath(t, "mariadb-dump", "mariadb-client")
	if testing.Short() {
		t.Skip("real-mariadbd restores skipped in -short mode")
	}
	d := renderAndServe(t, slaposRequest)
	ctx := context.Background()
	db0 := ipv6.HostPort{Host: "::1", Port: 2099}
	part := filepath.Join(d.out, "partitions", "cluster1-mariadb-0")
	a := startAgent(t, agent.Config{Manager: d.plainURL(), Cluster: "cluster1", Addr: db0, Partition: part,
		Credential: d.creds[db0.String()], HeartbeatUser: slapos.HeartbeatUser, WatchWait: 10 * time.Second})
	agentWait(t, 90*time.Second, "mariadbd of partition 0 accepting connections", func() bool { return accepting(db0) })
	// From here the test is the manager: the daemon would act on the server meanwhile.
	d.stop()
	l := a.a.Layout()
	srv, err := mariadb.Open(db0, "repman", d.dbPW, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	db := srv.DB()
	agentWait(t, time.Minute, "the manager's account on partition 0", func() bool {
		_, err := db.ExecContext(ctx, "SELECT 1")
		return err == nil
	})
	logs := func() string { return a.log.String() + "\nerror log:\n" + tailOf(l.ErrorLog(), 80) }
	exec1 := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	str := func(q string) string {
		t.Helper()
		var s sql.NullString
		if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s.String
	}
	ids := func(table string) string {
		t.Helper()
		rows, err := db.QueryContext(ctx, "SELECT id FROM "+table+" ORDER BY id")
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			rows.Scan(&id)
			out = append(out, id)
		}
		return strings.Join(out, ",")
	}
	tableExists := func(schema, table string) bool {
		return str(fmt.Sprintf("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='%s' AND TABLE_NAME='%s'", schema, table)) != "0"
	}
	// job queues task with the manager's address as replication-manager does and waits for
	// the partition to end it (feed, when set, streams to the partition's port meanwhile).
	job := func(task string, feed []byte) (result string, state string) {
		t.Helper()
		port := 0
		if feed != nil {
			port = freePortT(t)
		}
		id, err := srv.InsertJob(ctx, task, port, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if feed != nil {
			addr := net.JoinHostPort("::1", fmt.Sprint(port))
			var conn net.Conn
			agentWait(t, time.Minute, task+": the partition listening on "+addr, func() bool {
				conn, err = net.DialTimeout("tcp", addr, time.Second)
				return err == nil
			})
			if _, err := io.Copy(conn, bytes.NewReader(feed)); err != nil {
				t.Fatalf("%s: stream: %v", task, err)
			}
			conn.Close()
		}
		var row mariadb.JobRow
		if err := waitForT(ctx, 3*time.Minute, func() bool {
			row, err = srv.Job(ctx, id)
			return err == nil && row.End != nil
		}); err != nil {
			t.Fatalf("%s not ended: %v (row %+v, %v)\n%s", task, err, row, err, logs())
		}
		return row.Result, str(fmt.Sprintf("SELECT state FROM replication_manager_schema.jobs WHERE id=%d", id))
	}

	// The data and position of the backup.
	exec1("CREATE DATABASE fb")
	exec1("CREATE TABLE fb.t (id INT PRIMARY KEY)")
	exec1("INSERT INTO fb.t VALUES (1)")
	atBackup := str("SELECT @@gtid_binlog_pos")
	if atBackup == "" {
		t.Fatal("no GTID position after writes: is the binary log on?")
	}
	recv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { // ends when the partition closes its stream, or the listener is closed
		c, err := recv.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- b
	}()
	id, err := srv.InsertJob(ctx, "mariabackup", recv.Addr().(*net.TCPAddr).Port, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var physical []byte
	select {
	case physical = <-got:
	case <-time.After(5 * time.Minute):
		recv.Close()
		t.Fatalf("no backup stream\n%s", logs())
	}
	recv.Close()
	agentWait(t, time.Minute, "mariabackup ended", func() bool { r, err := srv.Job(ctx, id); return err == nil && r.End != nil })
	if r, _ := srv.Job(ctx, id); r.Result != "backup streamed" || len(physical) == 0 {
		t.Fatalf("backup: %q, %d bytes\n%s", r.Result, len(physical), logs())
	}

	// What the server wrote after the backup (a failed master's diverged transactions), and
	// replica settings pointing at the new master, as replication-manager sets them before
	// a flashback.
	exec1("INSERT INTO fb.t VALUES (2)")
	exec1("CREATE TABLE fb.after (id INT PRIMARY KEY)")
	masterPort := freePortT(t) // nothing listens there: the replica keeps connecting
	exec1(fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', MASTER_PASSWORD='x', MASTER_USE_GTID=slave_pos", masterPort))

	result, state := job("flashbackmariabackup", physical)
	if !strings.HasPrefix(result, "flashback at "+atBackup) || state != "3" {
		t.Fatalf("physical flashback: result %q state %s\n%s", result, state, logs())
	}
	if ids("fb.t") != "1" || tableExists("fb", "after") {
		t.Fatalf("after the physical flashback fb.t holds %q and fb.after exists: %v", ids("fb.t"), tableExists("fb", "after"))
	}
	if pos, binlog := str("SELECT @@gtid_slave_pos"), str("SELECT @@gtid_binlog_pos"); pos != atBackup || binlog != "" {
		t.Fatalf("after the physical flashback gtid_slave_pos %q (want %q), gtid_binlog_pos %q (want empty)", pos, atBackup, binlog)
	}
	if st := slaveStatus(t, db); st["Master_Port"] != fmt.Sprint(masterPort) || st["Using_Gtid"] != "Slave_Pos" || st["Master_Host"] != "127.0.0.1" {
		t.Fatalf("replica settings after the flashback: %s:%s using %s", st["Master_Host"], st["Master_Port"], st["Using_Gtid"])
	}
	if left, _ := filepath.Glob(l.DataDir() + ".*"); len(left) > 0 {
		t.Fatalf("left beside the datadir: %v", left)
	}

	// A flashback whose data cannot start (no system tables): the server comes back on the
	// data it had.
	exec1("STOP ALL SLAVES")
	exec1("INSERT INTO fb.t VALUES (3)")
	before := str("SELECT @@gtid_binlog_pos")
	broken := withoutSystemTables(t, physical)
	result, state = job("flashbackmariabackup", broken)
	if !strings.Contains(result, "on the restored data") || !strings.Contains(result, "the previous data is back and running") || state != "5" {
		t.Fatalf("broken physical flashback: result %q state %s\n%s", result, state, logs())
	}
	if ids("fb.t") != "1,3" || str("SELECT @@gtid_binlog_pos") != before {
		t.Fatalf("after the failed flashback fb.t holds %q, gtid_binlog_pos %q (want 1,3 and %q)", ids("fb.t"), str("SELECT @@gtid_binlog_pos"), before)
	}

	// A logical flashback from a dump of the server.
	var dump bytes.Buffer
	atDump, err := backup.LogicalStream(ctx, backup.LogicalOptions{Server: db0, Creds: backup.Credentials{User: "repman", Password: d.dbPW}}, &dump)
	if err != nil {
		t.Fatal(err)
	}
	exec1("INSERT INTO fb.t VALUES (4)")
	exec1("CREATE DATABASE fb2")
	result, state = job("flashbackmysqldump", dump.Bytes())
	if !strings.HasPrefix(result, "flashback at "+atDump+"; replication started") || state != "3" {
		t.Fatalf("logical flashback: result %q state %s\n%s", result, state, logs())
	}
	if ids("fb.t") != "1,3" || str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb2'") != "0" {
		t.Fatalf("after the logical flashback fb.t holds %q, fb2 exists: %s", ids("fb.t"), str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb2'"))
	}
	if pos, binlog := str("SELECT @@gtid_slave_pos"), str("SELECT @@gtid_binlog_pos"); pos != atDump || binlog != "" {
		t.Fatalf("after the logical flashback gtid_slave_pos %q (want %q), gtid_binlog_pos %q (want empty)", pos, atDump, binlog)
	}

	// A dump that breaks half-way: what it created is gone, what was there is back.
	exec1("STOP ALL SLAVES")
	exec1("INSERT INTO fb.t VALUES (5)")
	var bad bytes.Buffer
	zw := gzip.NewWriter(&bad)
	fmt.Fprintf(zw, "-- SET GLOBAL gtid_slave_pos='%s';\nCREATE DATABASE fb3;\nCREATE TABLE fb3.t (id INT);\nINSERT INTO fb3.t VALUES (1);\nDROP TABLE fb.t;\nTHIS IS NOT SQL;\n", atDump)
	zw.Close()
	result, state = job("flashbackmysqldump", bad.Bytes())
	if !strings.Contains(result, "load:") || !strings.Contains(result, "the previous data is back and running") || state != "5" {
		t.Fatalf("broken logical flashback: result %q state %s\n%s", result, state, logs())
	}
	if ids("fb.t") != "1,3,5" || str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb3'") != "0" {
		t.Fatalf("after the failed load fb.t holds %q (want 1,3,5), fb3 exists: %s", ids("fb.t"), str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb3'"))
	}

	// A dump cut short at a statement's end: valid SQL, but not the whole dump.
	bad.Reset()
	zw = gzip.NewWriter(&bad)
	fmt.Fprintf(zw, "-- SET GLOBAL gtid_slave_pos='%s';\nCREATE DATABASE fb4;\n", atDump)
	zw.Close()
	result, state = job("reseedmysqldump", bad.Bytes())
	if !strings.Contains(result, "the dump is not complete") || !strings.Contains(result, "the previous data is back and running") || state != "5" {
		t.Fatalf("incomplete dump: result %q state %s\n%s", result, state, logs())
	}
	if ids("fb.t") != "1,3,5" || str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb4'") != "0" {
		t.Fatalf("after the incomplete dump fb.t holds %q (want 1,3,5), fb4 exists: %s", ids("fb.t"), str("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='fb4'"))
	}

	result, state = job("zfssnapback", nil)
	if !strings.HasPrefix(result, "failed: zfssnapback: not supported:") || state != "5" {
		t.Fatalf("zfssnapback: result %q state %s", result, state)
	}
	if strings.Contains(a.log.String(), d.dbPW) {
		t.Fatal("the database password is in the agent's log")
	}
}

// withoutSystemTables returns the physical backup stream without its mysql directory:
// mariadb-backup prepares it, mariadbd refuses to start on it.
func withoutSystemTables(t *testing.T, stream []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	x := exec.Command("mbstream", "-x", "-C", dir)
	x.Stdin = bytes.NewReader(stream)
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("mbstream -x: %v: %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(dir, "mysql")); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	c := exec.Command("mbstream", append([]string{"-c"}, files...)...)
	c.Dir = dir
	var out, stderr bytes.Buffer
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("mbstream -c: %v: %s", err, stderr.String())
	}
	return out.Bytes()
}

// slaveStatus returns SHOW SLAVE STATUS by column name (empty: no replication configured).
func slaveStatus(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]string{}
	if !rows.Next() {
		return out
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out
}
