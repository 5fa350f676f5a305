package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
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
	o, err := orchestrator.New(c.Settings.ProvOrchestrator, orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := o.Placement(c)
	if err != nil {
		t.Fatal(err)
	}
	db := pl.Databases[0]
	t.Cleanup(func() { o.UnprovisionDatabase(context.Background(), c, db) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ok, _ := o.IsProvisioned(c, nil, nil); ok {
		t.Fatal("provisioned before provisioning")
	}
	if err := o.ProvisionDatabase(ctx, c, db); err != nil {
		t.Fatal(err)
	}
	if ok, err := o.IsProvisioned(c, nil, nil); !ok || err != nil {
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
	if err := o.StopDatabase(ctx, c, db, nil); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err == nil {
		t.Fatal("server still answers after stop")
	}
	if err := o.StartDatabase(ctx, c, db); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err != nil {
		t.Fatalf("restarted server does not answer: %v", err)
	}
	// A non-loopback address is refused with a clear error.
	other := db
	other.Addr.Host = "192.0.2.10"
	if err := o.StartDatabase(ctx, c, other); err == nil {
		t.Fatal("started a server for a remote address")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
