package proxysqltest

import (
	"reflect"
	"strings"
	"testing"
)

func mustExec(t *testing.T, d *AdminDouble, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if err := d.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestDoubleLoadSaveAndMonitor(t *testing.T) {
	d, err := Start(Options{WriterIsAlsoReader: Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustExec(t, d,
		"REPLACE INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (0, 1, 'c')",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, 'a', 3306), (1, 'b', 3306)",
	)
	eq(t, "runtime before LOAD", d.Dump("runtime_mysql_servers", "hostname"), nil)
	mustExec(t, d, "LOAD MYSQL SERVERS TO RUNTIME")
	eq(t, "runtime", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"), []string{"1 a ONLINE", "1 b ONLINE"})
	eq(t, "disk before SAVE", d.Dump("disk.mysql_servers", "hostname"), nil)

	// a is writable: the monitor makes it the writer and (writer_is_also_reader off) its
	// reader row vanishes; the configuration is untouched.
	d.SimulateReadOnly("a", 3306, false)
	eq(t, "after read_only=0", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"),
		[]string{"0 a ONLINE", "1 b ONLINE"})
	eq(t, "config", d.Dump("mysql_servers", "hostgroup_id", "hostname"), []string{"1 a", "1 b"})

	// A LOAD resets runtime to the configuration; the monitor applies what it knows again.
	mustExec(t, d, "LOAD MYSQL SERVERS TO RUNTIME")
	eq(t, "after LOAD", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"),
		[]string{"0 a ONLINE", "1 b ONLINE"})

	// a turns read-only: back to the readers.
	d.SimulateReadOnly("a", 3306, true)
	eq(t, "after read_only=1", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"),
		[]string{"1 a ONLINE", "1 b ONLINE"})

	mustExec(t, d, "UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostname = 'b' AND hostgroup_id IN (1, 2)",
		"SAVE MYSQL SERVERS TO DISK", "DELETE FROM mysql_servers WHERE hostname = 'a'")
	eq(t, "disk", d.Dump("disk.mysql_servers", "hostname", "status"), []string{"a ONLINE", "b OFFLINE_SOFT"})
	eq(t, "config", d.Dump("mysql_servers", "hostname", "status"), []string{"b OFFLINE_SOFT"})
	eq(t, "disk hostgroups", d.Dump("disk.mysql_replication_hostgroups", "writer_hostgroup", "reader_hostgroup", "check_type"), []string{"0 1 read_only"})
}

// What ProxySQL 2.7.1 showed: the monitor neither strips a loaded reader row of a writer
// (whatever writer_is_also_reader) nor adds one; with the default writer_is_also_reader a
// moved writer keeps its reader row; a backend removed while busy stays OFFLINE_HARD until
// it drains; the configuration keeps a status's case, runtime upper-cases it.
func TestDoubleMonitorAsProxySQL271(t *testing.T) {
	d, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustExec(t, d,
		"REPLACE INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup) VALUES (0, 1)",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port, status) VALUES (0, 'a', 3306, 'online'), (1, 'b', 3306, 'ONLINE'), (1, 'c', 3306, 'ONLINE')",
		"LOAD MYSQL SERVERS TO RUNTIME",
	)
	eq(t, "config keeps the case", d.Dump("mysql_servers", "hostname", "status"), []string{"a online", "b ONLINE", "c ONLINE"})
	d.SimulateReadOnly("a", 3306, false)
	d.SimulateReadOnly("b", 3306, true)
	d.SimulateReadOnly("c", 3306, false)
	eq(t, "runtime", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"),
		[]string{"0 a ONLINE", "0 c ONLINE", "1 b ONLINE", "1 c ONLINE"})

	d.HoldConnections("b", 3306, true)
	mustExec(t, d, "DELETE FROM mysql_servers WHERE hostname IN ('b', 'c')", "LOAD MYSQL SERVERS TO RUNTIME")
	eq(t, "busy backend removed", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"),
		[]string{"0 a ONLINE", "1 b OFFLINE_HARD"})
	d.HoldConnections("b", 3306, false)
	eq(t, "drained", d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status"), []string{"0 a ONLINE"})
}

func TestDoubleConstraintsAsProxySQL271(t *testing.T) {
	d, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for stmt, want := range map[string]string{
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, 'a', 70000)":                     "port >= 0 AND port <= 65535",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port, weight) VALUES (1, 'a', 3306, -1)":          "weight >= 0 AND weight <=10000000",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port, compression) VALUES (1, 'a', 3306, 5)":      "compression IN(0,1)",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port, status) VALUES (1, 'a', 3306, 'DOWN')":      "UPPER(status)",
		"INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (-1, 'a', 3306)":                     "hostgroup_id>=0",
		"INSERT INTO mysql_users (username, password, active) VALUES ('u', 'p', 2)":                           "active IN (0,1)",
		"INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup) VALUES (5, 5)":         "reader_hostgroup<>writer_hostgroup",
		"INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup) VALUES (7, 1), (8, 1)": "UNIQUE constraint failed: reader_hostgroup",
	} {
		if err := d.Exec(stmt); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", stmt, err, want)
		}
	}
}

func TestDoubleRejectsUnknownStatements(t *testing.T) {
	d, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range []string{
		"SELECT * FROM stats_mysql_connection_pool",
		"LOAD MYSQL QUERY RULES TO RUNTIME",
		"SELECT nosuch FROM mysql_servers",
		"SET mysql-monitor_enabled = 'false'",
		"UPDATE mysql_servers SET status = 'ONLINE' WHERE hostname LIKE 'a%'",
	} {
		if err := d.Exec(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %v does not name the statement", s, err)
		}
	}
}
