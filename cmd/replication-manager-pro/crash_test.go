package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/internal/testenv"
)

const cliChildEnv = "RMP_CLI_CHILD_ARGS"

// TestCLIChildProcess runs the command line given in RMP_CLI_CHILD_ARGS and exits with its
// status; it does nothing in a normal test run. A crash hook ends the process on its own.
func TestCLIChildProcess(t *testing.T) {
	raw := os.Getenv(cliChildEnv)
	if raw == "" {
		return
	}
	root := newRootCmd()
	root.SetArgs(strings.Split(raw, "\x1f"))
	if err := root.Execute(); err != nil {
		os.Exit(exitCode(err)) // as main does: prints the error
	}
	os.Exit(0)
}

// The real commands end to end: "act switchover" dies right after the old master was frozen
// (RMP_TEST_CRASH_AFTER_STEP=2, the state an operator's kill -9 left in 8 of 17 tries
// before the journal), then the daemon starts on the same configuration and, before
// anything else, rolls the switchover back: one writable master, both replicas
// replicating from it.
func TestDaemonRepairsSwitchoverKilledByCrash(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr())
	}
	path, datadir, _ := writeDaemonConfig(t, hosts)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), cliChildEnv+"="+strings.Join([]string{"act", "switchover", "--config", path}, "\x1f"), cluster.CrashAfterStepEnv+"=2")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != cluster.CrashExitCode {
		t.Fatalf("act switchover with the crash hook: %v, want exit %d\n%s", err, cluster.CrashExitCode, out)
	}
	if ro := c.Master().QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("the crash left the old master read_only=%s, want the frozen state 1", ro)
	}
	journal := filepath.Join(datadir, "c1", "plan-journal.json")
	if _, err := os.Stat(journal); err != nil {
		t.Fatalf("no plan journal after the crash: %v", err)
	}

	// The daemon on the same configuration.
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"monitor", "--config", path})
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	for {
		ro := c.Master().QueryString(t, "SELECT @@read_only")
		_, statErr := os.Stat(journal)
		ok := ro == "0" && os.IsNotExist(statErr)
		for _, r := range c.Replicas() {
			st := r.SlaveStatus(t)
			ok = ok && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" && st["Master_Port"] == fmt.Sprint(c.Master().Port())
		}
		if ok {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not repaired 5 s after the daemon started (old master read_only=%s, journal %v)\n%s", ro, statErr, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("repaired %s after the daemon started", time.Since(start).Round(time.Millisecond))
	events, _ := os.ReadFile(filepath.Join(datadir, "events.jsonl"))
	if !strings.Contains(string(events), "rolling back switchover") {
		t.Fatalf("the event log does not say the switchover was rolled back:\n%s", events)
	}
}
