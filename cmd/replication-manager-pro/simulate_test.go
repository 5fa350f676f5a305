package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"replication-manager-pro/api"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/slaposim"
	"replication-manager-pro/topology"
)

// simSelf runs this test binary as the program (TestCLIChildProcess), for the simulator's
// manager and agents.
func simSelf(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), cliChildEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}

// seedRequest writes the seed's request (../../testdata) with changes: database-amount n,
// one computer per database (COMP-1...), and the given keys.
func seedRequest(t testing.TB, dir string, n int, set map[string]any) string {
	t.Helper()
	b, err := os.ReadFile(slaposRequest)
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	c := req["repman-cluster-dict"].(map[string]any)["cluster1"].(map[string]any)
	for k := range c {
		if strings.HasPrefix(k, "-sla-") {
			delete(c, k)
		}
	}
	c["database-amount"] = n
	for i := 0; i < n; i++ {
		c[fmt.Sprintf("-sla-%d-computer_guid", i)] = fmt.Sprintf("COMP-%d", i+1)
	}
	for k, v := range set {
		c[k] = v
	}
	b, _ = json.Marshal(req)
	path := filepath.Join(dir, fmt.Sprintf("request-%d.json", n))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func masterOf(ctx context.Context, sim *slaposim.Sim) (ipv6.HostPort, bool) {
	srv, err := sim.Servers(ctx, "cluster1")
	if err != nil {
		return ipv6.HostPort{}, false
	}
	for _, s := range srv {
		if s.State == "Master" {
			p, _ := strconv.Atoi(s.Port)
			return ipv6.HostPort{Host: ipv6.Unbracket(s.Host), Port: p}, true
		}
	}
	return ipv6.HostPort{}, false
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// TestSlapOSSimulatedSeedStory runs the seed's story on simulated SlapOS computers (one
// network namespace each): the seed's request with database-amount 3, its tag list (ssl
// included), failover-mode automatic (the seed's manual would wait for an operator) and one
// shared instance. The agents start the three MariaDB from their bundles, the manager
// bootstraps replication, the shared instance's database is created, and its published
// IPv6 URL works through the proxy (HAProxy) with TLS, the server verified against the
// published CA. The master's computer loses its link: the manager fails over and the URL
// takes writes again; the link comes back and the old master rejoins as a replica with the
// writes made meanwhile, without anyone typing a command. Then
// database-amount goes to 4 and the request is rendered again: the fourth partition is
// provisioned, seeded with the tenant's data and replicating.
//
// It runs twice: with HAProxy in front, where the cut-off master's mariadbd also crashes
// and its agent restarts it on the isolated computer before the link returns; and with the
// cluster's ProxySQL under its partition agent in the root partition, as SlapOS deploys it,
// where the old master keeps running through the cut (its agent, which cannot reach the
// manager, leaves it alone) and the manager fences and rejoins it when the link returns.
func TestSlapOSSimulatedSeedStory(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end simulation skipped in -short mode")
	}
	realtest.LookPath(t, "mariadbd", "mariadb-server")
	realtest.LookPath(t, "mariadb", "mariadb-client")
	realtest.Root(t, "network namespaces (the simulated computers)")
	t.Run("haproxy", func(t *testing.T) {
		realtest.LookPath(t, "haproxy", "haproxy")
		seedStory(t, "", true)
	})
	t.Run("proxysql", func(t *testing.T) { seedStory(t, testenv.RequireProxySQL(t), false) })
}

// seedStory is TestSlapOSSimulatedSeedStory with ProxySQL (its binary) or, "", HAProxy;
// crash: the cut-off master's mariadbd is also killed.
func seedStory(t *testing.T, proxysql string, crash bool) {
	proxyName := "HAProxy"
	if proxysql != "" {
		proxyName = "ProxySQL"
	}
	// Short: HAProxy's socket path under it has at most 97 characters (t.TempDir() adds
	// the subtest's name).
	dir, err := os.MkdirTemp("", "rmp-seed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	set := map[string]any{"failover-mode": "automatic"}
	req3 := seedRequest(t, dir, 3, set)
	shared := filepath.Join(dir, "shared.json")
	os.WriteFile(shared, []byte(`[{"slave_reference": "SOFTINST-42", "slave_title": "wordpress", "db_charset": "utf8mb4_unicode_ci"}]`), 0o600)
	ctx := context.Background()
	progress := &lockedBuffer{}
	t0 := time.Now()
	sim, err := slaposim.Start(ctx, slaposim.Options{Parameters: req3, SharedInstances: shared, Dir: filepath.Join(dir, "sim"),
		Network: "netns", Self: simSelf, MonitorArgs: []string{"--monitoring-ticker", "1"}, Log: progress, ProxySQL: proxysql})
	if err != nil {
		t.Fatalf("simulation: %v\n%s", err, progress.String())
	}
	t.Cleanup(sim.Close)
	logs := func() string {
		s := progress.String() + "\nmanager:\n" + tailOf(filepath.Join(sim.RootDir(), "var", "log", "repman.log"), 40)
		for _, db := range sim.DBs {
			s += "\nagent " + db.Addr.String() + ":\n" + tailOf(db.AgentLog(), 10)
		}
		return s
	}
	t.Logf("request -> 3 databases replicating and the shared instance's database created: %v", time.Since(t0).Round(time.Millisecond))

	// The published IPv6 URL, through the proxy, with TLS.
	pub, ok := sim.Published.Shared["SOFTINST-42"]
	if !ok || !strings.Contains(pub.URL, "@[fd00:5eed:51::fe]:") || pub.SSLCA == "" {
		t.Fatalf("published: %+v", sim.Published)
	}
	cipher, err := slaposim.TenantAnswers(ctx, pub.URL, pub.SSLCA)
	if err != nil {
		t.Fatalf("tenant URL %s: %v\n%s", maskURL(pub.URL), err, logs())
	}
	t.Logf("tenant URL over IPv6 through %s: TLS %s", proxyName, cipher)
	// The proxy that routes is not Failed in the manager's eyes (HAProxy's API port was once
	// probed at the root partition's address, where HAProxy does not listen).
	var proxies []api.Proxy
	if err := waitForT(ctx, time.Minute, func() bool {
		proxies = nil
		return sim.API.JSON(ctx, "/api/clusters/cluster1/topology/proxies", &proxies) == nil && len(proxies) == 1 && proxies[0].State == "ProxyRunning"
	}); err != nil {
		t.Fatalf("the routing %s is not ProxyRunning: %+v\n%s", proxyName, proxies, logs())
	}
	if _, err := slaposim.TenantAnswers(ctx, pub.URL, ""); err == nil {
		t.Fatal("the tenant's account accepted a connection without TLS (REQUIRE SSL)")
	}
	tdb, err := slaposim.OpenTenant(pub.URL, pub.SSLCA)
	if err != nil {
		t.Fatal(err)
	}
	defer tdb.Close()
	if _, err := tdb.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.ExecContext(ctx, "INSERT INTO t VALUES (1, 'before')"); err != nil {
		t.Fatal(err)
	}

	// The master's computer is cut off (and its mariadbd crashes).
	oldMaster, ok := masterOf(ctx, sim)
	if !ok {
		t.Fatalf("no master\n%s", logs())
	}
	odb := sim.DatabaseAt(oldMaster)
	if odb == nil {
		t.Fatalf("no partition for %s", oldMaster)
	}
	oldPid := readPid(odb.PidFile())
	if err := odb.Computer.LinkDown(); err != nil {
		t.Fatal(err)
	}
	linkUp := false
	defer func() {
		if !linkUp {
			odb.Computer.LinkUp()
		}
	}()
	tCut := time.Now()
	if crash {
		// Once the link is surely down: the crash's reset must not reach the replicas, or
		// this is the story of a killed master, not of a computer cut off.
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(oldPid, syscall.SIGKILL)
	}
	var newMaster ipv6.HostPort
	if err := waitForT(ctx, 3*time.Minute, func() bool {
		m, ok := masterOf(ctx, sim)
		newMaster = m
		return ok && !ipv6.SameAddr(m, oldMaster)
	}); err != nil {
		t.Fatalf("no failover after the master's computer was cut off: %v\n%s", err, logs())
	}
	t.Logf("link down -> new master %s: %v", newMaster, time.Since(tCut).Round(time.Millisecond))
	if err := waitForT(ctx, time.Minute, func() bool {
		_, err := tdb.ExecContext(ctx, "INSERT INTO t VALUES (2, 'after failover')")
		return err == nil
	}); err != nil {
		t.Fatalf("the tenant URL takes no write after the failover: %v\n%s", err, logs())
	}
	t.Logf("link down -> tenant write acknowledged again: %v", time.Since(tCut).Round(time.Millisecond))
	if crash {
		// Its agent restarts mariadbd on the isolated computer.
		if err := waitForT(ctx, time.Minute, func() bool {
			p := readPid(odb.PidFile())
			return p != 0 && p != oldPid
		}); err != nil {
			t.Fatalf("the old master's agent did not restart mariadbd: %v\n%s", err, logs())
		}
	} else if p := readPid(odb.PidFile()); p != oldPid {
		// Its agent cannot reach the manager and must leave the running server alone.
		t.Fatalf("the cut-off master's mariadbd changed (pid %d, was %d)\n%s", p, oldPid, logs())
	}
	if err := odb.Computer.LinkUp(); err != nil {
		t.Fatal(err)
	}
	linkUp = true
	tUp := time.Now()
	if err := waitForT(ctx, 3*time.Minute, func() bool { return sim.Replicating(ctx, "cluster1", 3) }); err != nil {
		srv, _ := sim.Servers(ctx, "cluster1")
		t.Fatalf("the old master did not rejoin: %v %+v\n%s", err, srv, logs())
	}
	t.Logf("link up -> old master replicating: %v", time.Since(tUp).Round(time.Millisecond))
	if m, _ := masterOf(ctx, sim); !ipv6.SameAddr(m, newMaster) {
		t.Fatalf("master %s after the rejoin, want %s", m, newMaster)
	}
	dbPW := secretsDB(t, sim.RootDir())
	waitRows(t, ctx, oldMaster, dbPW, pub.Database, 2, logs)

	// A physical backup of a replica through the API: on another computer, the manager
	// queues a job the partition's agent runs (mariadb-backup streamed to a receiver port).
	var replica *slaposim.Database
	for _, db := range sim.DBs {
		if !ipv6.SameAddr(db.Addr, newMaster) {
			replica = db
			break
		}
	}
	code, body, err := sim.API.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+topology.ServerIDFor(replica.Addr)+"/actions/backup-physical", nil, time.Minute)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("backup-physical: %d %s %v", code, body, err)
	}
	if err := waitForT(ctx, 2*time.Minute, func() bool {
		var backups []struct {
			Server string `json:"server"`
			Kind   string `json:"kind"`
			GTID   string `json:"gtid"`
		}
		if sim.API.JSON(ctx, "/api/clusters/cluster1/backups", &backups) != nil {
			return false
		}
		for _, b := range backups {
			if b.Kind == "physical" && b.GTID != "" && b.Server == replica.Addr.String() {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no physical backup of %s stored: %v\n%s", replica.Addr, err, logs())
	}
	if log := tailOf(replica.AgentLog(), 100); !strings.Contains(log, "task=mariabackup") || !strings.Contains(log, "job done") {
		t.Fatalf("the backup was not taken by the partition's agent:\n%s", log)
	}
	// The agent's report of it, in the manager's event log (the report route, from another
	// computer's namespace).
	if err := waitForT(ctx, 20*time.Second, func() bool {
		code, b, _ := sim.API.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/logs?n=1000", nil, 10*time.Second)
		return code == 200 && strings.Contains(string(b), "agent: job:mariabackup (jobs): done")
	}); err != nil {
		t.Fatalf("the manager's events do not show the agent's backup job: %v", err)
	}

	// database-amount 3 -> 4: a fourth partition, provisioned, seeded and replicating.
	req4 := seedRequest(t, dir, 4, set)
	t4 := time.Now()
	if err := sim.Rerender(ctx, req4); err != nil {
		t.Fatalf("database-amount 4: %v\n%s", err, logs())
	}
	t.Logf("database-amount 3 -> 4: fourth database replicating after %v", time.Since(t4).Round(time.Millisecond))
	fourth := sim.Database("cluster1", 3)
	if fourth == nil || fourth.Computer.GUID != "COMP-4" {
		t.Fatalf("fourth partition: %+v", fourth)
	}
	waitRows(t, ctx, fourth.Addr, dbPW, pub.Database, 2, logs)
	if _, err := tdb.ExecContext(ctx, "INSERT INTO t VALUES (3, 'four')"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, fourth.Addr, dbPW, pub.Database, 3, logs)
}

func secretsDB(t *testing.T, root string) string {
	t.Helper()
	var sec struct {
		Clusters map[string]struct{ DB string } `json:"clusters"`
	}
	b, _ := os.ReadFile(filepath.Join(root, "secrets.json"))
	if err := json.Unmarshal(b, &sec); err != nil {
		t.Fatal(err)
	}
	return sec.Clusters["cluster1"].DB
}

// waitRows waits until the tenant's table on server addr holds n rows.
func waitRows(t *testing.T, ctx context.Context, addr ipv6.HostPort, pw, database string, n int, logs func() string) {
	t.Helper()
	srv, err := mariadb.Open(addr, "repman", pw, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var got int
	if err := waitForT(ctx, time.Minute, func() bool {
		err := srv.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+database+"`.t").Scan(&got)
		return err == nil && got == n
	}); err != nil {
		t.Fatalf("%s: %d rows in the tenant's table, want %d\n%s", addr, got, n, logs())
	}
}

func waitForT(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(none)"
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
