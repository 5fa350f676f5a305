package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

func decodeInto(t *testing.T, where string, r resp, code int, v any) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: %d %s, want %d", where, r.code, r.body, code)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("%s: %v in %s", where, err, r.body)
	}
	assertNoRealSecret(t, where, r)
}

// TestServerInspectionOnRealCluster reads a real master and replica through every
// inspection route: shapes, redaction of a password in the processlist, grants, 404 for an
// unknown server, and 503 naming a stopped one.
func TestServerInspectionOnRealCluster(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr()}
	dir := t.TempDir()
	e := newEnv(t, dir, writeConfig(t, dir, "", realCluster("c1", hosts, "")), nil)
	tok := e.login("admin", apiPassword)
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave)
	ids := []string{topology.ServerIDFor(mustHP(t, hosts[0])), topology.ServerIDFor(mustHP(t, hosts[1]))}
	base := "/api/clusters/c1/servers/"

	// Detail: the server object of topology/servers; by id or host:port; 404 names the server.
	var one DBServer
	decodeInto(t, "server detail", e.do("GET", base+ids[1], tok, nil), 200, &one)
	if one.ID != ids[1] || one.State != string(topology.StateSlave) || one.Port != strconv.Itoa(c.Servers[1].Port()) {
		t.Errorf("server detail: id %s state %s port %s", one.ID, one.State, one.Port)
	}
	decodeInto(t, "server detail by address", e.do("GET", base+hosts[0], tok, nil), 200, &one)
	if one.ID != ids[0] || one.State != string(topology.StateMaster) {
		t.Errorf("server detail by address: id %s state %s", one.ID, one.State)
	}
	for _, sub := range []string{"", "/processlist", "/variables"} {
		var eb inspectError
		decodeInto(t, "unknown server"+sub, e.do("GET", base+"db123"+sub, tok, nil), 404, &eb)
		if !strings.Contains(eb.Error, `"db123"`) {
			t.Errorf("404 body does not name the server: %q", eb.Error)
		}
	}

	// Processlist: a statement holding a password literal is shown redacted.
	const secret = "Inspect-S3cret-pw"
	db := c.Master().DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.ExecContext(ctx, "SELECT SLEEP(60), PASSWORD('"+secret+"')")
	}()
	var procs []Process
	waitFor(t, "the sleeping statement in the processlist", func() bool {
		procs = nil
		decodeInto(t, "processlist", e.do("GET", base+ids[0]+"/processlist", tok, nil), 200, &procs)
		for _, p := range procs {
			if strings.Contains(p.Info, "SLEEP(60)") {
				return true
			}
		}
		return false
	})
	var sleeper Process
	for _, p := range procs {
		if strings.Contains(p.Info, "SLEEP(60)") {
			sleeper = p
		}
	}
	if strings.Contains(sleeper.Info, secret) || !strings.Contains(sleeper.Info, "PASSWORD('********')") {
		t.Errorf("processlist info not redacted: %q", sleeper.Info)
	}
	if sleeper.ID == 0 || sleeper.User != testenv.RootUser || sleeper.Command != "Query" {
		t.Errorf("processlist row: %+v", sleeper)
	}
	c.Master().Exec(t, "KILL "+strconv.FormatUint(sleeper.ID, 10))
	cancel()
	<-done

	// Variables and status: name/value pairs with the original's field names.
	for _, k := range []struct{ sub, name string }{{"/variables", "max_connections"}, {"/status", "Uptime"}} {
		var vars []VariableValue
		decodeInto(t, k.sub, e.do("GET", base+ids[0]+k.sub, tok, nil), 200, &vars)
		found := false
		for _, v := range vars {
			found = found || (strings.EqualFold(v.Name, k.name) && v.Value != "")
		}
		if !found || !strings.Contains(e.do("GET", base+ids[0]+k.sub, tok, nil).body, `"variableName"`) {
			t.Errorf("%s: no %s among %d entries", k.sub, k.name, len(vars))
		}
	}

	// All slaves status: the replica's one connection to the master; none on the master.
	var rows []SlaveStatus
	decodeInto(t, "all-slaves-status", e.do("GET", base+ids[1]+"/all-slaves-status", tok, nil), 200, &rows)
	if len(rows) != 1 || rows[0].MasterPort != strconv.Itoa(c.Master().Port()) || rows[0].SlaveIORunning != "Yes" ||
		rows[0].MasterUser != testenv.ReplUser || rows[0].UsingGTID == "" {
		t.Errorf("all-slaves-status of the replica: %+v", rows)
	}
	decodeInto(t, "all-slaves-status of the master", e.do("GET", base+ids[0]+"/all-slaves-status", tok, nil), 200, &rows)
	if len(rows) != 0 {
		t.Errorf("all-slaves-status of the master: %+v", rows)
	}

	// Schemas and tables: a database made for the test, with its table and sizes.
	c.Master().Exec(t, "CREATE DATABASE inspectdb")
	c.Master().Exec(t, "CREATE TABLE inspectdb.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB")
	c.Master().Exec(t, "INSERT INTO inspectdb.t VALUES (1, 'a'), (2, 'b')")
	var schemas []SchemaJSON
	decodeInto(t, "schemas", e.do("GET", base+ids[0]+"/schemas", tok, nil), 200, &schemas)
	var got *SchemaJSON
	for i := range schemas {
		if schemas[i].Name == "inspectdb" {
			got = &schemas[i]
		}
	}
	if got == nil || got.Tables != 1 || got.DataLength <= 0 || got.Size != got.DataLength+got.IndexLength {
		t.Errorf("schemas: inspectdb = %+v in %+v", got, schemas)
	}
	var tables []TableJSON
	decodeInto(t, "tables", e.do("GET", base+ids[0]+"/tables", tok, nil), 200, &tables)
	if len(tables) == 0 || tables[0].Schema == "mysql" {
		t.Errorf("tables: %+v", tables)
	}
	foundT := false
	for _, tb := range tables {
		foundT = foundT || (tb.Schema == "inspectdb" && tb.Name == "t" && tb.Engine == "InnoDB")
	}
	if !foundT {
		t.Errorf("tables: no inspectdb.t in %+v", tables)
	}

	// Master status: the binlog coordinates of any server, here the master's,
	// whose binlog holds the test database's transactions.
	var ms MasterStatusJSON
	decodeInto(t, "master-status", e.do("GET", base+ids[0]+"/master-status", tok, nil), 200, &ms)
	if !ms.LogBin || ms.File == "" || ms.Position == 0 || ms.GTIDBinlogPos == "" {
		t.Errorf("master-status: %+v", ms)
	}

	// Grants: ext holds only "cluster": the detail yes, the live views no.
	ext := e.login("ext", extPassword)
	if r := e.do("GET", base+ids[0], ext, nil); r.code != 200 {
		t.Errorf("detail for a user without db grants: %d", r.code)
	}
	for _, sub := range []string{"/processlist", "/variables", "/status", "/master-status", "/all-slaves-status", "/schemas", "/tables"} {
		if r := e.do("GET", base+ids[0]+sub, ext, nil); r.code != http.StatusForbidden {
			t.Errorf("%s without its grant: %d, want 403", sub, r.code)
		}
		if r := e.do("GET", base+ids[0]+sub, "", nil); r.code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", sub, r.code)
		}
	}

	// A stopped server: 503 naming it, within the request's deadline.
	c.Servers[1].Stop()
	start := time.Now()
	var eb inspectError
	decodeInto(t, "stopped server", e.do("GET", base+ids[1]+"/processlist", tok, nil), http.StatusServiceUnavailable, &eb)
	if eb.Server != hosts[1] || !strings.Contains(eb.Error, hosts[1]) {
		t.Errorf("503 does not name the server %s: %+v", hosts[1], eb)
	}
	if d := time.Since(start); d > inspectTimeout+5*time.Second {
		t.Errorf("the stopped server took %s to answer", d)
	}
}
