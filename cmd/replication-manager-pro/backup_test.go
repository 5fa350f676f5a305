package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/backup"
	"replication-manager-pro/config"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
)

// `restore` for an operator who lost everything: the local backup store is gone, the
// backup comes back from restic with the configuration only, as a data directory.
func TestRestoreCommandFromRestic(t *testing.T) {
	realtest.LookPath(t, "restic", "restic")
	realtest.LookPath(t, "mariadb-backup", "mariadb-backup")
	c := testenv.StartCluster(t, 1)
	s := c.Servers[0]
	s.Exec(t, "CREATE DATABASE lost")
	s.Exec(t, "CREATE TABLE lost.t (id INT PRIMARY KEY)")
	s.Exec(t, "INSERT INTO lost.t VALUES (1), (2), (3)")
	dir := t.TempDir()
	repo := filepath.Join(dir, "restic")
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`[c1]
db-servers-hosts = "%s"
db-servers-credential = "%s:%s"
replication-credential = "%s:%s"
monitoring-datadir = "%s"
backup-restic = true
backup-restic-repository = "%s"
backup-restic-password = "restic-secret"
`, s.Addr(), testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword, filepath.Join(dir, "data"), repo)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, _ := backup.OpenStore(filepath.Join(dir, "data", "c1", "backups"), "c1")
	m, err := backup.TakePhysical(ctx, st, backup.PhysicalOptions{Server: ipv6.HostPort{Host: "127.0.0.1", Port: s.Port()},
		DataDir: filepath.Join(s.Dir(), "data"), Creds: backup.Credentials{User: testenv.RootUser, Password: testenv.RootPassword}})
	if err != nil {
		t.Fatal(err)
	}
	r := &backup.Restic{Repository: repo, Password: "restic-secret", TmpDir: t.TempDir()}
	if _, err := r.Archive(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "data")) // everything lost but the configuration

	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run("restore", "--config", cfgPath, "--list")
	if err != nil || !strings.Contains(out, m.ID) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if strings.Contains(out, "restic-secret") {
		t.Fatal("the restic password is printed")
	}
	target := filepath.Join(dir, "restored")
	out, err = run("restore", "--config", cfgPath, "--id", m.ID, "--to", target)
	if err != nil || !strings.Contains(out, m.GTID) {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	// The directory is a data directory: a server starts on it with the rows.
	s.Shutdown()
	data := filepath.Join(s.Dir(), "data")
	os.RemoveAll(data)
	if err := os.Rename(target, data); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if n := s.QueryString(t, "SELECT COUNT(*) FROM lost.t"); n != "3" {
		t.Fatalf("restored rows: %s", n)
	}
}

// Collected logs go to the node directory the original uses, IPv6 brackets kept, under the
// working directory (<monitoring-basedir>/data on SlapOS), not a flattened "[__1]_3306".
func TestLogDirIsTheNodeDirectory(t *testing.T) {
	s := config.Defaults()
	s.MonitoringDatadir, s.MonitoringBasedir = "/var/lib/rmp", "/srv/repman"
	got := logDir(&s, "c1", ipv6.HostPort{Host: "::1", Port: 3306})
	if want := "/srv/repman/data/c1/[::1]_3306/log"; got != want {
		t.Fatalf("log dir %s, want %s", got, want)
	}
}
