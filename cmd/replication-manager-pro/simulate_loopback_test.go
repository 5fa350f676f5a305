package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
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
