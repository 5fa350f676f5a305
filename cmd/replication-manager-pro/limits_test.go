package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
)

// TestClustersAddedAndRemovedReleaseEverything: the daemon's factory (monitor, routers,
// orchestrator) run for 300 clusters added and removed leaves no orchestrator kept and the
// goroutine count at its baseline (issue 11 item 7: 1,000 adds held 1,022 goroutines and
// nothing removed a cluster).
func TestClustersAddedAndRemovedReleaseEverything(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	orchs := newOrchestrators(log)
	fleet := cluster.NewFleet(t.Context(), monitorFactory(nil, log, orchs, nil), log)
	t.Cleanup(fleet.StopAll)
	settings := config.Defaults()
	settings.MonitoringDatadir = t.TempDir()
	settings.DBServersHosts = "127.0.0.1:1,[::1]:2"
	settings.DBServersConnectTimeout = 1
	settings.ProvOrchestrator = "slapos"
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("c%d", i)
		if err := fleet.Start(config.Cluster{Name: name, Section: name, Settings: settings}); err != nil {
			t.Fatal(err)
		}
		if !fleet.Stop(name) {
			t.Fatalf("%s not stopped", name)
		}
	}
	var now int
	for deadline := time.Now().Add(15 * time.Second); ; {
		now = runtime.NumGoroutine()
		if now <= base+3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after 300 clusters added and removed", base, now)
	if now > base+3 {
		t.Errorf("goroutines: %d before, %d after 300 clusters added and removed", base, now)
	}
	orchs.mu.RLock()
	kept, latest := len(orchs.byMonitor), len(orchs.latest)
	orchs.mu.RUnlock()
	if kept != 0 || latest != 0 {
		t.Errorf("orchestrators kept after removal: %d by monitor, %d latest", kept, latest)
	}
}

// TestMonitorRefusesMoreClustersThanTheCap: a configuration with more clusters than
// monitoring-max-clusters does not start.
func TestMonitorRefusesMoreClustersThanTheCap(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "[Default]\nmonitoring-datadir = %q\nmonitoring-max-clusters = 2\napi-port = 0\nhttp-port = 0\n", filepath.Join(dir, "data"))
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "\n[c%d]\ndb-servers-hosts = \"127.0.0.1:%d\"\n", i, i)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"monitor", "--config", path})
	err := root.Execute()
	if code := exitCodeOf(err); code != 1 || !strings.Contains(errb.String(), "monitoring-max-clusters") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func exitCodeOf(err error) int {
	if e, ok := err.(exitError); ok {
		return e.code
	}
	if err != nil {
		return -1
	}
	return 0
}
