package api

import (
	"fmt"
	"strings"
	"testing"

	"replication-manager-pro/configurator"
	"replication-manager-pro/errlog"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/slowlog"
	"replication-manager-pro/topology"
)

// TestSlowLogOnRealServer reads a real server's slow query log through slow-queries and
// digest-statements-slow: from mysql.slow_log (log_output=TABLE), then from the file
// MariaDB itself wrote (log_output=FILE: the parser against the real format, the server
// being on this machine). A password in a logged statement is redacted; with the slow log
// off the answer is 404 and says what to do.
func TestSlowLogOnRealServer(t *testing.T) {
	c, e, tok := masterReplicaEnv(t)
	srv := c.Servers[0]
	base := "/api/clusters/c1/servers/" + topology.ServerIDFor(mustHP(t, srv.Addr()))

	var eb inspectError
	decodeInto(t, "slow log off", e.do("GET", base+"/slow-queries", tok, nil), 404, &eb)
	if !strings.Contains(eb.Error, "slow_query_log is OFF") || !strings.Contains(eb.Error, "log_output=TABLE") {
		t.Fatalf("404 body: %q", eb.Error)
	}
	const secret = "Slow-S3cret-pw"
	db := srv.DB(t)
	for _, out := range []string{"TABLE", "FILE"} {
		srv.Exec(t, "SET GLOBAL slow_query_log=OFF")
		srv.Exec(t, "TRUNCATE mysql.slow_log")
		srv.Exec(t, "SET GLOBAL log_output='"+out+"'")
		srv.Exec(t, "SET GLOBAL slow_query_log_file='"+srv.Dir()+"/slow-"+out+".log'")
		srv.Exec(t, "SET GLOBAL long_query_time=0.05")
		srv.Exec(t, "SET GLOBAL slow_query_log=ON")
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conn.ExecContext(t.Context(), "SET SESSION long_query_time=0.05") // pooled sessions keep their own
		for i := 0; i < 3; i++ {
			conn.ExecContext(t.Context(), fmt.Sprintf("SELECT SLEEP(0.1), %d", i))
			conn.ExecContext(t.Context(), "SELECT SLEEP(0.1), PASSWORD('"+secret+"')")
		}
		conn.Close()
		var entries []slowlog.Entry
		r := e.do("GET", base+"/slow-queries", tok, nil)
		decodeInto(t, out+" slow-queries", r, 200, &entries)
		if strings.Contains(r.body, secret) {
			t.Fatalf("%s: the password is in the answer", out)
		}
		sleeps := 0
		for _, en := range entries {
			if strings.Contains(en.SQL, "SLEEP(0.1)") {
				sleeps++
				if en.QueryTime < 0.09 || en.User != "root" || en.Time.IsZero() {
					t.Errorf("%s: entry %+v", out, en)
				}
			}
		}
		if sleeps != 6 {
			t.Fatalf("%s: %d sleeping statements, want 6: %+v", out, sleeps, entries)
		}
		var ds []slowlog.Digest
		decodeInto(t, out+" digests", e.do("GET", base+"/digest-statements-slow", tok, nil), 200, &ds)
		counts := map[string]int{}
		for _, d := range ds {
			counts[d.Text] = d.Count
		}
		if counts["select sleep(?), ?"] != 3 || counts["select sleep(?), password(?)"] != 3 {
			t.Fatalf("%s: digests %v", out, counts)
		}
		t.Logf("%s: %d entries, %d digests", out, len(entries), len(ds))
	}
}

// TestErrorLogOnRealServer reads a real server's error log through errorlog: the server's
// own file (it runs on this machine), newest first, with continuation lines kept.
func TestErrorLogOnRealServer(t *testing.T) {
	c, e, tok := masterReplicaEnv(t)
	var entries []errlog.Entry
	r := e.do("GET", "/api/clusters/c1/servers/"+topology.ServerIDFor(mustHP(t, c.Servers[1].Addr()))+"/errorlog", tok, nil)
	decodeInto(t, "errorlog", r, 200, &entries)
	ready, replica := false, false
	for i, en := range entries {
		if en.Time == "" || en.Level == "" {
			t.Fatalf("entry %d: %+v", i, en)
		}
		if i > 0 && en.Time > entries[i-1].Time {
			t.Fatalf("not newest first at %d: %s after %s", i, en.Time, entries[i-1].Time)
		}
		if strings.Contains(en.Text, "ready for connections") && strings.Contains(en.Text, "\nVersion:") {
			ready = true
		}
		if strings.Contains(en.Text, "Slave I/O thread") || strings.Contains(en.Text, "Slave SQL thread") {
			replica = true
		}
	}
	if !ready || !replica {
		t.Fatalf("errorlog lacks the start (with its Version line: %v) or the replication threads (%v): %d entries", ready, replica, len(entries))
	}
	// InnoDB's own status text, on the same server.
	var innodb map[string]string
	decodeInto(t, "status-innodb", e.do("GET", "/api/clusters/c1/servers/"+topology.ServerIDFor(mustHP(t, c.Servers[1].Addr()))+"/status-innodb", tok, nil), 200, &innodb)
	if !strings.Contains(innodb["status"], "TRANSACTIONS") {
		t.Fatalf("status-innodb: %.300q", innodb["status"])
	}
}

// TestReplicaControlRoutes: stop-slave, start-slave and skip-replication-event through the
// API on a real replica: 200 with the plan, 409 with the refusal (a skip on a healthy
// replica, a stop of a stopped one).
func TestReplicaControlRoutes(t *testing.T) {
	c, e, tok := masterReplicaEnv(t)
	act := "/api/clusters/c1/servers/" + topology.ServerIDFor(mustHP(t, c.Servers[1].Addr())) + "/actions/"
	var res ControlResult
	decodeInto(t, "skip on a healthy replica", e.do("POST", act+"skip-replication-event", tok, nil), 409, &res)
	if !strings.Contains(res.Plan.Refused, "runs") {
		t.Fatalf("refusal %q", res.Plan.Refused)
	}
	decodeInto(t, "stop-slave", e.do("POST", act+"stop-slave", tok, nil), 200, &res)
	if st := c.Servers[1].SlaveStatus(t); st["Slave_IO_Running"] != "No" {
		t.Fatalf("IO thread %s after stop-slave", st["Slave_IO_Running"])
	}
	waitFor(t, "the monitor to see the stop", func() bool {
		r := e.do("POST", act+"stop-slave?dryRun=true", tok, nil)
		return r.code == 409 && strings.Contains(r.body, "stopped already")
	})
	decodeInto(t, "start-slave", e.do("POST", act+"start-slave", tok, nil), 200, &res)
	if st := c.Servers[1].SlaveStatus(t); st["Slave_IO_Running"] == "No" || st["Slave_SQL_Running"] != "Yes" {
		t.Fatalf("after start-slave: IO %s SQL %s", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
}

// TestDiffVariablesOnRealCluster: a variable set differently on the replica is listed with
// both values; those that differ by design (server_id, read_only, paths) are not.
func TestDiffVariablesOnRealCluster(t *testing.T) {
	c, e, tok := masterReplicaEnv(t)
	c.Servers[1].Exec(t, "SET GLOBAL max_connections = 77")
	var diffs []VariableDiff
	decodeInto(t, "diffvariables", e.do("GET", "/api/clusters/c1/diffvariables", tok, nil), 200, &diffs)
	found := false
	for _, d := range diffs {
		switch d.Name {
		case "SERVER_ID", "READ_ONLY", "DATADIR", "PORT", "GTID_BINLOG_POS":
			t.Errorf("%s is listed: it differs by design", d.Name)
		case "MAX_CONNECTIONS":
			found = len(d.Values) == 2 && d.Values[1].Server == c.Servers[1].Addr() && d.Values[1].Value == "77" && d.Values[0].Value != "77"
		}
	}
	if !found {
		t.Fatalf("max_connections not listed with both values: %+v", diffs)
	}
	var names []string
	for _, d := range diffs {
		names = append(names, d.Name)
	}
	t.Logf("differ: %s", strings.Join(names, " "))
}

// TestCertificatesRoute: 404 before the cluster has certificates; then the CA, server and
// client certificates with their expiry, never a key.
func TestCertificatesRoute(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, writeConfig(t, dir, "", realCluster("c1", []string{"127.0.0.1:1"}, "")), nil)
	tok := e.login("admin", apiPassword)
	if r := e.do("GET", "/api/clusters/c1/certificates", tok, nil); r.code != 404 || !strings.Contains(r.body, "ssl tag") {
		t.Fatalf("before: %d %s", r.code, r.body)
	}
	m, _ := e.fleet.Get("c1")
	if _, err := configurator.ClusterTLSFor(&m.Config.Settings, "c1"); err != nil {
		t.Fatal(err)
	}
	var certs []CertificateInfo
	r := e.do("GET", "/api/clusters/c1/certificates", tok, nil)
	decodeInto(t, "certificates", r, 200, &certs)
	if strings.Contains(r.body, "PRIVATE KEY") || len(certs) != 3 {
		t.Fatalf("certificates: %s", r.body)
	}
	for _, c := range certs {
		if c.DaysLeft < 3000 || (c.File == "ca-cert.pem") != c.IsCA {
			t.Errorf("%+v", c)
		}
	}
}

// masterReplicaEnv is an API on cluster c1 of a real master and replica, logged in as admin,
// once the monitor sees them as such.
func masterReplicaEnv(t *testing.T) (*testenv.Cluster, *env, string) {
	t.Helper()
	c := testenv.StartCluster(t, 2)
	dir := t.TempDir()
	e := newEnv(t, dir, writeConfig(t, dir, "", realCluster("c1", []string{c.Servers[0].Addr(), c.Servers[1].Addr()}, "")), nil)
	tok := e.login("admin", apiPassword)
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave)
	return c, e, tok
}
