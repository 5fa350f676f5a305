package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/internal/testenv"
)

func TestMonitorDaemonRecordsTopologyAndStops(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr(), c.Servers[2].Addr()}
	cfg := writeClusterConfig(t, hosts)
	body, _ := os.ReadFile(cfg)
	datadir := regexp.MustCompile(`monitoring-datadir = "([^"]+)"`).FindSubmatch(body)[1]

	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"monitor", "--config", cfg, "--monitoring-ticker", "0.2"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	events := filepath.Join(string(datadir), "events.jsonl")
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _ := eventlog.ReadFile(events)
		masters := 0
		for _, e := range evs {
			if e.Kind == "state" && e.NewState == "Master" && e.Server == hosts[0] {
				masters++
			}
		}
		if masters == 1 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no Master event in %s; log:\n%s", events, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Servers[1].Exec(t, "SET GLOBAL read_only = 0")
	deadline = time.Now().Add(10 * time.Second)
	for c.Servers[1].QueryString(t, "SELECT @@read_only") != "1" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("the daemon did not set the writable replica back read_only")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("monitor returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("monitor did not stop")
	}
	log := errb.String()
	for _, want := range []string{"monitoring started", "topology changed", "monitoring stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, testenv.RootPassword) {
		t.Fatal("the log shows a password")
	}
}
