package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"replication-manager-pro/agent"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/slaposim"
)

// TestSlapOSSimulatedLoopback runs the simulator as a user without root would: every
// partition on ::1 and 127.0.0.1. Two databases replicate from their agents' bundles, the
// shared instance's IPv6 URL answers over TLS through HAProxy; database-amount 2 -> 3 seeds
// the third partition.
func TestSlapOSSimulatedLoopback(t *testing.T) {
	realtest.LookPath(t, "mariadbd", "mariadb-server")
	realtest.LookPath(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("end-to-end simulation skipped in -short mode")
	}
	dir := t.TempDir()
	req2 := seedRequest(t, dir, 2, nil)
	shared := filepath.Join(dir, "shared.json")
	os.WriteFile(shared, []byte(`[{"slave_reference": "SOFTINST-7"}]`), 0o600)
	ctx := context.Background()
	progress := &lockedBuffer{}
	sim, err := slaposim.Start(ctx, slaposim.Options{Parameters: req2, SharedInstances: shared, Dir: filepath.Join(dir, "sim"),
		Network: "loopback", Self: simSelf, MonitorArgs: []string{"--monitoring-ticker", "1"}, Log: progress})
	if err != nil {
		t.Fatalf("simulation: %v\n%s", err, progress.String())
	}
	t.Cleanup(sim.Close)
	pub := sim.Published.Shared["SOFTINST-7"]
	if _, err := slaposim.TenantAnswers(ctx, pub.URL, pub.SSLCA); err != nil {
		t.Fatalf("tenant URL: %v", err)
	}
	t0 := time.Now()
	if err := sim.Rerender(ctx, seedRequest(t, dir, 3, nil)); err != nil {
		t.Fatalf("database-amount 3: %v\n%s", err, tailOf(filepath.Join(sim.RootDir(), "var", "log", "repman.log"), 30))
	}
	t.Logf("database-amount 2 -> 3 (loopback): %v", time.Since(t0).Round(time.Millisecond))
	// The donor's datadir is on this machine: a physical backup, restored by the third
	// partition's agent through the jobs protocol (reseedmariabackup on its port).
	third := sim.Database("cluster1", 2)
	if log := tailOf(third.AgentLog(), 200); !strings.Contains(log, "task=reseedmariabackup") || !strings.Contains(log, "job done") {
		t.Fatalf("the third partition was not seeded by its agent's job:\n%s", log)
	}
	dbPW := secretsDB(t, sim.RootDir())
	srv, err := mariadb.Open(third.Addr, "repman", dbPW, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var n int
	if err := srv.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=?", pub.Database).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the tenant's database on the seeded server: %d %v", n, err)
	}
}

// TestSlapOSSimulatedProxySQL runs the simulator with the cluster's real ProxySQL under its
// partition agent in the root partition (loopback): the shared instance's published URL
// answers over TLS through ProxySQL, verified against the published CA; a killed ProxySQL
// is restarted by its agent and the URL answers again.
func TestSlapOSSimulatedProxySQL(t *testing.T) {
	realtest.LookPath(t, "mariadbd", "mariadb-server")
	bin := testenv.RequireProxySQL(t)
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared.json")
	os.WriteFile(shared, []byte(`[{"slave_reference": "SOFTINST-9"}]`), 0o600)
	ctx := context.Background()
	progress := &lockedBuffer{}
	sim, err := slaposim.Start(ctx, slaposim.Options{Parameters: seedRequest(t, dir, 2, nil), SharedInstances: shared,
		Dir: filepath.Join(dir, "sim"), Network: "loopback", Self: simSelf, ProxySQL: bin,
		MonitorArgs: []string{"--monitoring-ticker", "1"}, Log: progress})
	if err != nil {
		t.Fatalf("simulation: %v\n%s", err, progress.String())
	}
	t.Cleanup(sim.Close)
	pub := sim.Published.Shared["SOFTINST-9"]
	if sim.Published.Clusters["cluster1"].Proxy != "proxysql" {
		t.Fatalf("published proxy %+v, want proxysql", sim.Published.Clusters["cluster1"])
	}
	tenantOK := func() error {
		db, err := slaposim.OpenTenant(pub.URL, pub.SSLCA)
		if err != nil {
			return err
		}
		defer db.Close()
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(qctx, "CREATE TABLE IF NOT EXISTS t (i INT PRIMARY KEY)"); err != nil {
			return err
		}
		_, err = db.ExecContext(qctx, "REPLACE INTO t VALUES (1)")
		return err
	}
	var lastErr error
	agentWait(t, 60*time.Second, "the tenant's URL writes through ProxySQL", func() bool { lastErr = tenantOK(); return lastErr == nil })
	l := agent.ProxyLayout{Root: sim.RootDir(), Cluster: "cluster1"}
	pid := proxyPid(l)
	if pid == 0 || processesWith(l.Cnf()) != 1 {
		t.Fatalf("ProxySQL pid %d, %d processes: not run by its agent", pid, processesWith(l.Cnf()))
	}
	syscall.Kill(pid, syscall.SIGKILL)
	agentWait(t, 60*time.Second, "ProxySQL restarted by its agent, the URL writing again", func() bool {
		p := proxyPid(l)
		return p != 0 && p != pid && tenantOK() == nil
	})
	if log := tailOf(sim.ProxyAgentLog("cluster1"), 100); !strings.Contains(log, "proxysql died") {
		t.Fatalf("the agent did not report the crash:\n%s", log)
	}
}
