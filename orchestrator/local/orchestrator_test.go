package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/orchestrator"
)

func TestLocalOrchestratorProvisionStopStart(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	realtest.LookPath(t, dbproc.MariadbdPath, "mariadb-server")
	port, err := dbproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`[Default]
monitoring-datadir = %q
prov-orchestrator = "local"
[c1]
db-servers-hosts = "127.0.0.1:%d"
db-servers-credential = "root:s3cr'et"
replication-credential = "repl:r3pl"
`, t.TempDir(), port)
	path := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, path, cfgText)
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &cfg.Clusters[0]
	o, err := orchestrator.New(c, orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	db := o.Placement().Databases[0]
	if want := filepath.Join(c.Settings.MonitoringDatadir, "c1", fmt.Sprintf("127.0.0.1_%d", port)); db.Partition != want {
		t.Fatalf("node directory %s, want %s", db.Partition, want)
	}
	t.Cleanup(func() { o.UnprovisionDatabase(context.Background(), db.Addr) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ok, _ := o.IsProvisioned(nil, nil); ok {
		t.Fatal("provisioned before provisioning")
	}
	if err := o.ProvisionDatabase(ctx, db.Addr); err != nil {
		t.Fatal(err)
	}
	if ok, err := o.IsProvisioned(nil, nil); !ok || err != nil {
		t.Fatalf("not provisioned after provisioning: %v", err)
	}
	ping := func() error {
		s, err := mariadb.Open(db.Addr, "root", "s3cr'et", mariadb.Options{ConnectTimeout: time.Second})
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("provisioned server does not answer: %v", err)
	}
	// A settings reload builds a new instance, handed the old one: it owns the running
	// server (a start is a no-op, a stop waits for the process it started).
	o, err = orchestrator.New(c, orchestrator.Deps{Previous: o})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.StartDatabase(ctx, db.Addr); err != nil {
		t.Fatalf("start of the running server after a reload: %v", err)
	}
	// The address as another form of the same loopback address.
	if err := o.StopDatabase(ctx, ipv6.HostPort{Host: "::ffff:127.0.0.1", Port: port}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err == nil {
		t.Fatal("server still answers after stop")
	}
	if err := o.StartDatabase(ctx, db.Addr); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err != nil {
		t.Fatalf("restarted server does not answer: %v", err)
	}
	// An address that is not one of the cluster's databases is refused.
	if err := o.StartDatabase(ctx, ipv6.HostPort{Host: "127.0.0.1", Port: port + 1}); !errors.Is(err, orchestrator.ErrUnknownNode) {
		t.Fatalf("start of an unknown server: %v", err)
	}
}

// TestLocalOrchestratorRefusesRemoteHosts: a remote address in db-servers-hosts is refused
// when the orchestrator is built, naming the key.
func TestLocalOrchestratorRefusesRemoteHosts(t *testing.T) {
	s := config.Defaults()
	s.ProvOrchestrator = Name
	s.MonitoringDatadir = t.TempDir()
	for hosts, ok := range map[string]bool{
		"127.0.0.1:3306,[::1]:3307,LOCALHOST:3308": true,
		"127.0.0.1:3306,192.0.2.10:3306":           false,
		"db1.example.org:3306":                     false,
	} {
		s.DBServersHosts = hosts
		_, err := orchestrator.New(&config.Cluster{Name: "c1", Settings: s}, orchestrator.Deps{})
		if ok != (err == nil) {
			t.Errorf("%s: %v", hosts, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cluster c1: prov-orchestrator local: db-servers-hosts: ") {
			t.Errorf("%s: error does not name the key: %v", hosts, err)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
