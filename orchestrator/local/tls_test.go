package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/orchestrator"
)

// With the database tag ssl, the servers the local orchestrator starts serve TLS with the
// cluster's certificates (<working dir>/<cluster>/): a REQUIRE SSL account connects over TLS,
// verifying the cluster CA for 127.0.0.1, and is refused without TLS.
func TestLocalOrchestratorServesTLSWithTagSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	realtest.LookPath(t, dbproc.MariadbdPath, "mariadb-server")
	port, err := dbproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	datadir := t.TempDir()
	path := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, path, fmt.Sprintf(`[Default]
monitoring-datadir = %q
prov-orchestrator = "local"
[c1]
db-servers-hosts = "127.0.0.1:%d"
db-servers-credential = "root:rootpw"
replication-credential = "repl:replpw"
prov-db-tags = "innodb,ssl"
`, datadir, port))
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(&cfg.Clusters[0], orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addr := o.Placement().Databases[0].Addr
	t.Cleanup(func() { o.UnprovisionDatabase(context.Background(), addr) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := o.ProvisionDatabase(ctx, addr); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(configurator.ClusterTLSDir(&cfg.Clusters[0].Settings, "c1"), "ca-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	if err := mysql.RegisterTLSConfig("local-tls-test", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
	defer mysql.DeregisterTLSConfig("local-tls-test")
	open := func(user, pw, tlsName string) (*sql.DB, error) {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr, c.TLSConfig, c.Timeout = user, pw, "tcp", addr.String(), tlsName, 3*time.Second
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return nil, err
		}
		db := sql.OpenDB(conn)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	root, err := open("root", "rootpw", "local-tls-test")
	if err != nil {
		t.Fatalf("root over TLS, verifying the cluster CA: %v", err)
	}
	defer root.Close()
	if _, err := root.Exec("CREATE USER tls_only@'%' IDENTIFIED BY 'pw' REQUIRE SSL"); err != nil {
		t.Fatal(err)
	}
	db, err := open("tls_only", "pw", "local-tls-test")
	if err != nil {
		t.Fatalf("REQUIRE SSL account over TLS: %v", err)
	}
	var cipher, name string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
		t.Fatalf("no cipher: %v", err)
	}
	db.Close()
	if db, err := open("tls_only", "pw", ""); err == nil {
		db.Close()
		t.Fatal("REQUIRE SSL account connected without TLS")
	}
}
