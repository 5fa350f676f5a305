package jobs

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/backup"
	"replication-manager-pro/cluster"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/internal/writeload"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

func hp(s *testenv.Server) ipv6.HostPort { return ipv6.HostPort{Host: "127.0.0.1", Port: s.Port()} }

// partition runs the fixture dbjobs script for server s every 300 ms, as a partition's
// cron would (faster), and plays the partition's supervisor: the script's START_CMD asks it
// to start mariadbd again.
func partition(t *testing.T, s *testenv.Server, socatPort int) {
	t.Helper()
	for _, p := range []string{"socat", "mbstream", "mariadb-backup", "mariadb"} {
		realtest.LookPath(t, p, "socat, mariadb-backup or mariadb-client")
	}
	dir := t.TempDir()
	cnf := filepath.Join(dir, "dbjob.cnf")
	creds := fmt.Sprintf("user=%s\npassword=%s\nhost=127.0.0.1\nport=%d\nprotocol=TCP\n", testenv.RootUser, testenv.RootPassword, s.Port())
	if err := os.WriteFile(cnf, []byte("[client]\n"+creds+"[mariabackup]\n"+creds), 0o600); err != nil {
		t.Fatal(err)
	}
	startFlag := filepath.Join(dir, "start-requested")
	stop := filepath.Join(dir, "stop.sh")
	os.WriteFile(stop, []byte("#!/bin/sh\nmariadb --defaults-file="+cnf+" -e SHUTDOWN\nwhile mariadb --defaults-file="+cnf+" -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done\nsleep 0.5\n"), 0o700)
	start := filepath.Join(dir, "start.sh")
	os.WriteFile(start, []byte("#!/bin/sh\ntouch "+startFlag+"\n"), 0o700)
	script, _ := filepath.Abs("testdata/dbjobs-fixture.sh")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, "bash", script)
			cmd.Env = append(os.Environ(), "CNF="+cnf, "DATADIR="+filepath.Join(s.Dir(), "data"), "BACKUPDIR="+filepath.Join(s.Dir(), "restore"),
				"TMPDIR="+dir, fmt.Sprintf("SOCAT_PORT=%d", socatPort), "BIND=127.0.0.1", "ERRLOG="+s.ErrorLogPath(),
				"STOP_CMD="+stop, "START_CMD="+start)
			cmd.Run()
			time.Sleep(300 * time.Millisecond)
		}
	}()
	sup := make(chan struct{})
	go func() {
		defer close(sup)
		for ctx.Err() == nil {
			if _, err := os.Stat(startFlag); err == nil {
				os.Remove(startFlag)
				s.Restart()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; <-sup })
}

func remoteFor(t *testing.T, socatPort int) *Remote {
	return &Remote{Advertise: "127.0.0.1", Bind: "127.0.0.1", Ports: []int{testenv.FreePort(t), testenv.FreePort(t)},
		SenderPort: func(ipv6.HostPort) int { return socatPort }, Poll: 100 * time.Millisecond, PickupTimeout: 30 * time.Second,
		StreamTimeout: 2 * time.Minute,
		Open: func(a ipv6.HostPort) (*mariadb.Server, error) {
			return mariadb.Open(a, testenv.RootUser, testenv.RootPassword, mariadb.Options{})
		}}
}

// The original's jobs protocol, with a partition-side script of ours written from SlapOS's
// dbjobs: a physical backup streamed by the partition through a receiver port is stored
// (checked, with its GTID), and a reseed plan sends it back to the partition, which
// restores it; the server then replicates, its stray data gone.
func TestJobsProtocolPhysicalBackupAndReseedThroughPartition(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m, p := c.Servers[0], c.Servers[1]
	writeload.Prepare(t, m, 2, 1000)
	c.WaitSync(t)
	socatPort := testenv.FreePort(t)
	partition(t, p, socatPort)
	remote := remoteFor(t, socatPort)
	st, err := backup.OpenStore(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var result string
	b, err := backup.StorePhysicalStream(st, hp(p).String(), "job", func(w io.Writer) error {
		var err error
		result, err = remote.Receive(ctx, hp(p), BackupPhysical.Task(), w)
		return err
	})
	if err != nil {
		t.Fatalf("%v (partition says %q)", err, result)
	}
	if b.GTID == "" || b.GTID != m.QueryString(t, "SELECT @@gtid_binlog_pos") {
		t.Fatalf("backup at %q, master at %s", b.GTID, m.QueryString(t, "SELECT @@gtid_binlog_pos"))
	}
	if n := p.QueryString(t, "SELECT COUNT(*) FROM replication_manager_schema.jobs WHERE task='mariabackup' AND done=1 AND end IS NOT NULL"); n != "1" {
		t.Fatalf("job row not ended: %s", n)
	}
	if p.QueryString(t, "SELECT @@gtid_binlog_pos") != m.QueryString(t, "SELECT @@gtid_binlog_pos") {
		t.Fatal("the jobs table went to the binary log")
	}

	// Stray data on the partition's server, then more writes on the master.
	p.Exec(t, "SET SESSION sql_log_bin=0")
	p.Exec(t, "CREATE DATABASE stray")
	m.Exec(t, "CREATE TABLE sbtest.after_backup (id INT PRIMARY KEY)")
	m.Exec(t, "INSERT INTO sbtest.after_backup VALUES (1), (2)")

	hosts := []ipv6.HostPort{hp(m), hp(p)}
	log := logrus.New()
	log.SetOutput(io.Discard)
	mon := cluster.NewMonitor(cluster.MonitorConfig{Cluster: "c1", Hosts: hosts, Ticker: 200 * time.Millisecond, ProbeTimeout: time.Second, MaxFail: 3,
		ReadOnlyReplicas: true, Failover: cluster.FailoverConfig{Exec: cluster.ExecConfig{ReplUser: testenv.ReplUser, ReplPassword: testenv.ReplPassword,
			HeartbeatPeriod: time.Second, ConnectRetry: time.Second, ReadOnlyReplicas: true, StateDir: t.TempDir()}}},
		cluster.MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), nil, log)
	defer mon.Close()
	mon.SetSeeding(&cluster.SeedConfig{Seeder: &backup.Seeder{Store: st, Remote: remote, Creds: backup.Credentials{User: testenv.RootUser, Password: testenv.RootPassword}},
		User: testenv.RootUser, Password: testenv.RootPassword})
	mon.Tick(ctx)
	plan, res, err := mon.Reseed(ctx, hp(p), false, false, "test")
	if err != nil {
		t.Fatalf("reseed: %v (%+v)", err, res)
	}
	if plan.Steps[1].Seed == nil || plan.Steps[1].Seed.Backup != b.ID {
		t.Fatalf("plan did not use the received backup: %+v", plan.Steps)
	}
	want := m.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := p.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 30)", want)); got != "0" {
		t.Fatalf("reseeded server does not catch up: %v", p.SlaveStatus(t))
	}
	if n := p.QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='stray'"); n != "0" {
		t.Fatal("the stray database survived the reseed")
	}
	writeload.Equal(t, "reseeded through the partition", writeload.Checksums(t, m), writeload.Checksums(t, p))
	if r := p.QueryString(t, "SELECT result FROM replication_manager_schema.jobs WHERE task='reseedmariabackup'"); !strings.Contains(r, "reseeded at") {
		t.Fatalf("partition's result: %q", r)
	}
}
