package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// realCluster is a cluster section for testenv servers (their credentials).
func realCluster(name string, hosts []string, extra string) clusterDef {
	return clusterDef{name: name, hosts: hosts, extra: fmt.Sprintf("db-servers-credential = \"%s:%s\"\nreplication-credential = \"%s:%s\"\n%s",
		testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword, extra)}
}

func assertNoRealSecret(t *testing.T, where string, r resp) {
	t.Helper()
	assertNoSecret(t, where, r)
	for _, s := range []string{testenv.RootPassword, testenv.ReplPassword} {
		if strings.Contains(r.body, s) {
			t.Errorf("%s: response contains a database password:\n%s", where, r.body)
		}
	}
}

// waitStates waits until the cluster's snapshot shows these states, in configured order.
func waitStates(t *testing.T, e *env, name string, want ...topology.State) *topology.Snapshot {
	t.Helper()
	var snap *topology.Snapshot
	waitFor(t, fmt.Sprintf("states %v", want), func() bool {
		m, ok := e.fleet.Get(name)
		if !ok {
			return false
		}
		snap = m.Monitor.Snapshot()
		if snap == nil || len(snap.Servers) != len(want) {
			return false
		}
		for i, s := range snap.Servers {
			if s.State != want[i] {
				return false
			}
		}
		return true
	})
	return snap
}

// TestSlapOSFlowOnRealCluster follows what the SlapOS scripts and test.py do against a
// healthy 3-node cluster configured with IPv6 addresses, over the real TLS listener.
func TestSlapOSFlowOnRealCluster(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicateOverIPv6())
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr6())
	}
	dir := t.TempDir()
	path := writeConfig(t, dir, "", realCluster("cluster1", hosts, ""))
	e := newEnv(t, dir, path, nil)
	e.start()
	waitStates(t, e, "cluster1", topology.StateMaster, topology.StateSlave, topology.StateSlave)
	hc := httpsClient()

	// Login with JSON, read .token.
	req, _ := http.NewRequest("POST", e.apiURL("/api/login"), strings.NewReader(`{"username":"admin","password":"`+apiPassword+`"}`))
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lt struct{ Token string }
	json.NewDecoder(res.Body).Decode(&lt)
	res.Body.Close()
	if res.StatusCode != 200 || lt.Token == "" {
		t.Fatalf("login: %d", res.StatusCode)
	}
	tok := lt.Token

	// GET /api/clusters with Bearer: an array; cluster1 provisioned, failable, not down.
	waitFor(t, "cluster1 failable", func() bool {
		m, _ := e.fleet.Get("cluster1")
		s := m.Monitor.Snapshot()
		return s != nil && s.IsFailable && s.IsAllDBUp
	})
	r := call(t, hc, "GET", e.apiURL("/api/clusters"), tok, nil)
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || r.code != 200 {
		t.Fatalf("/api/clusters: %d %v %s", r.code, err, r.body)
	}
	if len(list) != 1 || list[0]["name"] != "cluster1" || list[0]["isProvision"] != true || list[0]["isFailable"] != true || list[0]["isDown"] != false {
		t.Fatalf("cluster1 in /api/clusters: name=%v isProvision=%v isFailable=%v isDown=%v", list[0]["name"], list[0]["isProvision"], list[0]["isFailable"], list[0]["isDown"])
	}
	if list[0]["topology"] != "master-slave" || list[0]["isAllDbUp"] != true {
		t.Errorf("topology %v isAllDbUp %v", list[0]["topology"], list[0]["isAllDbUp"])
	}

	// /api/clusters/cluster1/status: exactly {"alive":"running"}, on both listeners, no token.
	for _, u := range []string{e.apiURL("/api/clusters/cluster1/status"), "http://" + e.srv.HTTPAddr().String() + "/api/clusters/cluster1/status"} {
		r := call(t, hc, "GET", u, "", nil)
		var got map[string]any
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.code != 200 || len(got) != 1 || got["alive"] != "running" {
			t.Fatalf("%s: %d %q", u, r.code, r.body)
		}
	}

	// Servers: bracketed IPv6 hosts, states, ids.
	r = call(t, hc, "GET", e.apiURL("/api/clusters/cluster1/topology/servers"), tok, nil)
	var servers []DBServer
	if err := json.Unmarshal([]byte(r.body), &servers); err != nil || len(servers) != 3 {
		t.Fatalf("servers: %v %s", err, r.body)
	}
	for i, s := range servers {
		if s.Host != "[::1]" || s.Port != strconv.Itoa(c.Servers[i].Port()) || s.ID != topology.ServerIDFor(mustHP(t, hosts[i])) {
			t.Errorf("server %d: host %q port %q id %q", i, s.Host, s.Port, s.ID)
		}
	}
	if servers[0].State != "Master" || servers[0].ReadOnly != "OFF" || servers[1].State != "Slave" || !servers[1].IsSlave ||
		servers[1].ReadOnly != "ON" || len(servers[1].Replications) != 1 || servers[1].Replications[0].SlaveIORunning != "Yes" {
		t.Errorf("servers: %+v", servers)
	}
	// Alerts of a healthy cluster: errors null.
	r = call(t, hc, "GET", e.apiURL("/api/clusters/cluster1/topology/alerts"), tok, nil)
	var alerts map[string]any
	json.Unmarshal([]byte(r.body), &alerts)
	if v, ok := alerts["errors"]; !ok || v != nil {
		t.Errorf("alerts of a healthy cluster: %s", r.body)
	}
	if r := call(t, hc, "GET", e.apiURL("/api/clusters/cluster1/actions/waitdatabases"), tok, nil); r.code != 200 {
		t.Errorf("waitdatabases: %d %q", r.code, r.body)
	}

	// IPv6 hosts in paths: raw and percent-encoded brackets.
	mport, rport := strconv.Itoa(c.Servers[0].Port()), strconv.Itoa(c.Servers[1].Port())
	for _, host := range []string{"[::1]", "%5B%3A%3A1%5D", "%5B::1%5D"} {
		checks := []struct {
			path string
			code int
			body string
		}{
			{"/api/clusters/cluster1/servers/" + host + "/" + mport + "/is-master", 200, "200 -Valid Master!"},
			{"/api/clusters/cluster1/servers/" + host + "/" + rport + "/is-master", 500, "503 -Not a Valid Master!"},
			{"/api/clusters/cluster1/servers/" + host + "/" + rport + "/is-slave", 200, "200 -Valid Slave!"},
			{"/api/clusters/cluster1/servers/" + host + "/" + mport + "/is-slave", 503, "503 -Not a Valid Slave!"},
			{"/api/clusters/cluster1/servers/" + host + "/is-master", 200, "200 -Valid Master!"},
		}
		for _, ck := range checks {
			r := e.do("GET", ck.path, "", nil)
			if r.code != ck.code || r.body != ck.body {
				t.Errorf("%s: %d %q, want %d %q", ck.path, r.code, r.body, ck.code, ck.body)
			}
		}
	}
	// And over the network (Go's client escapes the brackets).
	if r := call(t, hc, "GET", e.apiURL("/api/clusters/cluster1/servers/"+url.PathEscape("[::1]")+"/"+mport+"/is-master"), "", nil); r.body != "200 -Valid Master!" {
		t.Errorf("is-master over the network: %d %q", r.code, r.body)
	}

	// Read routes never show a secret.
	for _, p := range []string{"/api/clusters", "/api/clusters/cluster1", "/api/clusters/cluster1/topology/servers",
		"/api/clusters/cluster1/topology/master", "/api/clusters/cluster1/topology/slaves", "/api/clusters/cluster1/topology/logs",
		"/api/clusters/cluster1/topology/alerts", "/metrics"} {
		r := call(t, hc, "GET", e.apiURL(p), tok, nil)
		if r.code != 200 {
			t.Errorf("%s: %d", p, r.code)
		}
		assertNoRealSecret(t, p, r)
	}

	// Switchover through the API to the second server (form field prefmaster).
	r = call(t, hc, "POST", e.apiURL("/api/clusters/cluster1/actions/switchover"), tok, url.Values{"prefmaster": {hosts[1]}})
	if r.code != 200 {
		t.Fatalf("switchover: %d %s", r.code, r.body)
	}
	assertNoRealSecret(t, "switchover", r)
	waitStates(t, e, "cluster1", topology.StateSlave, topology.StateMaster, topology.StateSlave)

	// Metrics: states, lag, probe latency, the switchover counter and its steps. The
	// demoted master's lag shows once its replication runs: poll.
	wants := []string{
		fmt.Sprintf(`replication_manager_server_state{cluster="cluster1",server="%s",state="Master"} 1`, hosts[1]),
		fmt.Sprintf(`replication_manager_server_state{cluster="cluster1",server="%s",state="Master"} 0`, hosts[0]),
		`replication_manager_plans_total{cluster="cluster1",kind="switchover",result="ok"} 1`,
		`replication_manager_plans_total{cluster="cluster1",kind="failover",result="ok"} 0`,
		`replication_manager_plan_step_duration_seconds_count{cluster="cluster1",kind="switchover",step="promote"} 1`,
		`replication_manager_server_probe_latency_seconds{cluster="cluster1",server="` + hosts[0] + `"}`,
		`replication_manager_server_replication_lag_seconds{cluster="cluster1",server="` + hosts[2] + `"}`,
		`replication_manager_cluster_failover_counter{cluster="cluster1"} 0`,
	}
	var missing []string
	for try := 0; try < 300; try++ {
		m := call(t, hc, "GET", e.apiURL("/metrics"), "", nil).body
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(m, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("metrics lack %q", missing)
	}
}

// TestBootstrapMasterSlaveOnStandaloneServers: cleanup then bootstrap/master-slave on three
// servers without replication gives Master, Slave, Slave; a second bootstrap is refused.
func TestBootstrapMasterSlaveOnStandaloneServers(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.Standalone())
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr())
	}
	dir := t.TempDir()
	path := writeConfig(t, dir, "", realCluster("c1", hosts, ""))
	e := newEnv(t, dir, path, nil)
	tok := e.login("admin", apiPassword)
	waitFor(t, "a first snapshot", func() bool { m, _ := e.fleet.Get("c1"); return m.Monitor.Snapshot() != nil })

	if r := e.do("GET", "/api/clusters/c1/actions/replication/cleanup", tok, nil); r.code != 200 {
		t.Fatalf("cleanup: %d %q", r.code, r.body)
	}
	r := e.do("GET", "/api/clusters/c1/actions/replication/bootstrap/master-slave", tok, nil)
	if r.code != 200 {
		t.Fatalf("bootstrap: %d %q", r.code, r.body)
	}
	assertNoRealSecret(t, "bootstrap", r)
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave, topology.StateSlave)
	c.Servers[0].Exec(t, "CREATE DATABASE boot_check")
	waitFor(t, "replication of a new database", func() bool {
		return c.Servers[2].QueryString(t, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name='boot_check'") == "1"
	})
	if ro := c.Servers[1].QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Errorf("replica read_only = %s", ro)
	}
	r = e.do("GET", "/api/clusters/c1/actions/replication/bootstrap/master-slave", tok, nil)
	if r.code != 500 || !strings.Contains(r.body, "Environment already has an existing master/slave setup") {
		t.Fatalf("second bootstrap: %d %q", r.code, r.body)
	}
	// cleanup then bootstrap again works: the SlapOS sequence is idempotent.
	if r := e.do("GET", "/api/clusters/c1/actions/replication/cleanup", tok, nil); r.code != 200 {
		t.Fatalf("cleanup of a running setup: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/api/clusters/c1/actions/replication/bootstrap/master-slave", tok, nil); r.code != 200 {
		t.Fatalf("bootstrap after cleanup: %d %q", r.code, r.body)
	}
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave, topology.StateSlave)
}

func mustHP(t *testing.T, s string) ipv6.HostPort {
	t.Helper()
	hp, err := ipv6.ParseHostPort(s, ipv6.DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	return hp
}
