package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// "client server" against a daemon watching a real cluster: each view prints its table,
// --like filters variables, an unknown view or server fails with exit 1.
func TestClientServerViews(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	c.Master().Exec(t, "CREATE DATABASE clidb")
	c.Master().Exec(t, "CREATE TABLE clidb.t (id INT PRIMARY KEY) ENGINE=InnoDB")
	// A slow statement in mysql.slow_log for the slow and digests views.
	c.Master().Exec(t, "SET GLOBAL log_output='TABLE'")
	c.Master().Exec(t, "SET GLOBAL slow_query_log=ON")
	conn, err := c.Master().DB(t).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn.ExecContext(t.Context(), "SET SESSION long_query_time=0.05")
	conn.ExecContext(t.Context(), "SELECT SLEEP(0.1)")
	conn.Close()
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr()}
	port, _ := startDaemon(t, hosts)
	cli := clientRunner(t, port)
	client := func(args ...string) (string, string, int) { return cli(append([]string{"server"}, args...)...) }
	for _, k := range []struct {
		args []string
		want []string
	}{
		{[]string{hosts[0]}, []string{"id", "server_id", "gtid_binlog_pos"}},
		{[]string{hosts[0], "processlist"}, []string{"ID", "COMMAND", "Binlog Dump"}},
		{[]string{hosts[0], "variables", "--like", "max_conn"}, []string{"max_connections"}},
		{[]string{hosts[0], "status", "--like", "uptime"}, []string{"Uptime"}},
		{[]string{hosts[0], "master-status"}, []string{"file ", "position "}},
		{[]string{hosts[1], "slaves"}, []string{hosts[0], "Yes/Yes"}},
		{[]string{hosts[0], "schemas"}, []string{"clidb"}},
		{[]string{hosts[0], "tables"}, []string{"clidb", "InnoDB"}},
		{[]string{hosts[0], "schemas", "--json"}, []string{`"name":"clidb"`}},
		{[]string{hosts[0], "slow"}, []string{"SECONDS", "SLEEP(0.1)"}},
		{[]string{hosts[0], "digests"}, []string{"COUNT", "sleep(?)"}},
		{[]string{hosts[0], "errorlog"}, []string{"LEVEL", "ready for connections"}},
	} {
		out, errs, code := client(k.args...)
		if code != 0 {
			t.Errorf("client server %v: exit %d %s", k.args, code, errs)
			continue
		}
		for _, w := range k.want {
			if !strings.Contains(out, w) {
				t.Errorf("client server %v: no %q in\n%s", k.args, w, out)
			}
		}
		if k.args[len(k.args)-1] == "max_conn" && strings.Contains(out, "innodb_") {
			t.Errorf("--like did not filter:\n%s", out)
		}
	}
	if _, errs, code := client(hosts[0], "bogus"); code != 1 || !strings.Contains(errs, "unknown view") {
		t.Errorf("unknown view: exit %d %s", code, errs)
	}
	if _, errs, code := client("127.0.0.1:1", "processlist"); code != 1 || !strings.Contains(errs, "404") {
		t.Errorf("unknown server: exit %d %s", code, errs)
	}
	// A replica's replication by hand.
	if out, errs, code := cli("skip-event", "--server", hosts[1]); code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("skip-event on a healthy replica: exit %d %s%s", code, out, errs)
	}
	if out, errs, code := cli("stop-slave", "--server", hosts[1]); code != 0 || !strings.Contains(out, "stop-slave on "+hosts[1]) || !strings.Contains(out, "stop-replication") {
		t.Errorf("stop-slave: exit %d %s%s", code, out, errs)
	}
	if st := c.Servers[1].SlaveStatus(t); st["Slave_IO_Running"] != "No" {
		t.Errorf("IO thread %s after stop-slave", st["Slave_IO_Running"])
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, errs, code := cli("start-slave", "--server", hosts[1])
		if code == 0 {
			break
		}
		// The monitor may not have seen the stop yet: "runs already".
		if time.Now().After(deadline) || !strings.Contains(out, "runs already") {
			t.Fatalf("start-slave: exit %d %s%s", code, out, errs)
		}
	}
	if st := c.Servers[1].SlaveStatus(t); st["Slave_SQL_Running"] != "Yes" {
		t.Errorf("SQL thread %s after start-slave", st["Slave_SQL_Running"])
	}
}

// clientRunner runs "client ARGS" against the daemon listening on port, as admin.
func clientRunner(t *testing.T, port int) func(args ...string) (string, string, int) {
	conn := []string{"--insecure", "--port", strconv.Itoa(port), "--user", "admin", "--password", cliAPIPassword}
	return func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, append(append([]string{"client"}, args...), conn...)...)
	}
}
