package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
)

// TestDemoWithProxySQL runs the demo as make demo does with ProxySQL present: the
// application writes through ProxySQL over [::1] and 127.0.0.1 with TLS, verifying ProxySQL
// against the cluster CA (tag ssl), the writes land on the master and plain reads are
// served by the replicas.
func TestDemoWithProxySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the demo (mariadbd, proxysql) in -short mode")
	}
	realtest.LookPath(t, dbproc.MariadbdPath, "mariadb-server")
	t.Chdir("../..") // make demo runs from the repository's root
	if _, err := findProxySQL(); err != nil {
		realtest.Missing(t, "proxysql not found (%v): set PROXYSQL_BIN or put it at ../shared/tools/proxysql/proxysql (not packaged in Debian)", err)
	}
	dir, err := prepareDemoDir(filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := startDemoWith(ctx, dir, io.Discard, demoOptions{Proxy: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if e.Proxy != "proxysql" {
		t.Fatalf("demo proxy %q, want proxysql when its binary is found", e.Proxy)
	}
	// Tag ssl: clients speak TLS to ProxySQL and verify it against the cluster CA.
	ca, err := os.ReadFile(e.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA in " + e.CAPath)
	}
	if err := mysql.RegisterTLSConfig("demo-test", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
	defer mysql.DeregisterTLSConfig("demo-test")
	for i, host := range []string{"::1", "127.0.0.1"} {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.DBName = "app", e.AppPassword, "tcp", "demo"
		cfg.TLSConfig = "demo-test"
		cfg.Addr = net.JoinHostPort(host, strconv.Itoa(e.ProxySQLPort))
		cfg.Timeout, cfg.ReadTimeout = 2*time.Second, 5*time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		// The daemon syncs the application's account into ProxySQL once it bootstrapped
		// the router; give it a few ticks.
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err = db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, sid INT)")
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("through ProxySQL at %s: %v", cfg.Addr, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?, @@server_id)", i); err != nil {
			t.Fatalf("write through ProxySQL at %s: %v", cfg.Addr, err)
		}
		var sid, rid int
		if err := db.QueryRowContext(ctx, "SELECT sid FROM t WHERE id = ? FOR UPDATE", i).Scan(&sid); err != nil || sid != 1 {
			t.Fatalf("write through %s committed by server_id %d (%v), want the master's 1", cfg.Addr, sid, err)
		}
		if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&rid); err != nil || rid == 1 {
			t.Fatalf("plain read through %s served by server_id %d (%v), want a replica", cfg.Addr, rid, err)
		}
	}
}
