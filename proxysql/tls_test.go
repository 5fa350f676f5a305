package proxysql_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/configurator"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/proxysql"
)

// With the proxy tag ssl, TLS works for real on both sides of ProxySQL. proxysql.cnf comes
// from the ProxySQL bundle (configurator.GenerateProxy with the cluster's certificates),
// unpacked into ProxySQL's directory as on a SlapOS partition: its ssl_p2s_* paths name
// the files the bundle ships. Backend: ProxySQL reaches MariaDB over TLS with the cluster
// CA (use_ssl=1), so an account created REQUIRE SSL logs in through it. Frontend: clients
// negotiate TLS with ProxySQL (have_ssl) and verify its certificate, signed by the cluster
// CA, over 127.0.0.1 and [::1].
func TestRealTLSFrontendAndBackend(t *testing.T) {
	testenv.RequireProxySQL(t)
	certDir := testenv.ShortTempDir(t)
	files, err := configurator.ClusterTLS(certDir, "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var root string
	s := startStack(t, stackConfig{
		n:    2,
		tags: []string{proxysql.TagSSL},
		dbArgs: []string{
			"--ssl-ca=" + filepath.Join(certDir, "ca-cert.pem"),
			"--ssl-cert=" + filepath.Join(certDir, "server-cert.pem"),
			"--ssl-key=" + filepath.Join(certDir, "server-key.pem"),
		},
		render: func(s *stack) []byte {
			root = s.p.Dir
			s.params.SSLDir = filepath.Join(root, "etc", "proxysql", "ssl")
			entries, err := configurator.GenerateProxy(configurator.ProxyParams{ProxySQL: s.params, TLS: files, Version: "test", Time: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			var cnf []byte
			for _, e := range entries {
				path := filepath.Join(root, filepath.FromSlash(e.Path))
				switch e.Kind {
				case configurator.KindDir:
					if err := os.MkdirAll(path, 0o750); err != nil {
						t.Fatal(err)
					}
				case configurator.KindFile:
					if err := os.WriteFile(path, e.Data, e.Mode); err != nil {
						t.Fatal(err)
					}
				}
				if e.Path == configurator.ProxySQLCnfPath {
					cnf = e.Data
				}
			}
			// ProxySQL serves its clients with datadir/proxysql-{ca,cert,key}.pem (it
			// generates self-signed ones when absent): the cluster's, here.
			for name, data := range map[string][]byte{"proxysql-ca.pem": files.CA, "proxysql-cert.pem": files.ServerCert, "proxysql-key.pem": files.ServerKey} {
				if err := os.WriteFile(filepath.Join(s.p.Datadir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return cnf
		},
	})
	// Every certificate path of the cnf is a file the bundle shipped.
	cnf, err := os.ReadFile(s.p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	paths := 0
	for _, line := range strings.Split(string(cnf), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[0], "ssl_p2s_") {
			p := strings.Trim(f[2], `"`)
			if _, err := os.Stat(p); err != nil || !strings.HasPrefix(p, root+"/etc/proxysql/ssl/") {
				t.Errorf("%s = %s: not a file of the bundle (%v)", f[0], p, err)
			}
			paths++
		}
	}
	if paths != 3 || !strings.Contains(string(cnf), "have_ssl = true") || !strings.Contains(string(cnf), "use_ssl = 1") {
		t.Fatalf("cnf with tag ssl: %d ssl_p2s paths, have_ssl or use_ssl missing:\n%s", paths, cnf)
	}

	m := s.c.Master()
	m.Exec(t, "CREATE USER tlsonly@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL")
	m.Exec(t, "GRANT SELECT ON *.* TO tlsonly@'%'")
	s.c.WaitSync(t)
	mon := s.monitor("manual")
	snap := tickUntil(t, mon, 10*time.Second, "healthy", healthy)
	if err := s.r.Bootstrap(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if got := s.strs("SELECT DISTINCT use_ssl FROM runtime_mysql_servers"); strings.Join(got, ",") != "1" {
		t.Fatalf("runtime use_ssl %q, want 1 on every backend", got)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files.CA) {
		t.Fatal("cluster CA not parsable")
	}
	var handshakes atomic.Int32
	if err := mysql.RegisterTLSConfig("rmp-cluster-ca", &tls.Config{
		RootCAs: pool, MinVersion: tls.VersionTLS12,
		VerifyConnection: func(tls.ConnectionState) error { handshakes.Add(1); return nil },
	}); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		before := handshakes.Load()
		db := s.clientDB(v6, func(c *mysql.Config) { c.User, c.Passwd, c.TLSConfig = "tlsonly", "tls-pw", "rmp-cluster-ca" })
		var name, cipher string
		if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
			t.Fatalf("REQUIRE SSL account through ProxySQL at %s over TLS: %v", s.p.Addr(v6), err)
		}
		if cipher == "" {
			t.Fatalf("through %s: the backend session of ProxySQL is not encrypted (Ssl_cipher empty)", s.p.Addr(v6))
		}
		if handshakes.Load() == before {
			t.Fatalf("client to ProxySQL at %s: no TLS handshake verified against the cluster CA", s.p.Addr(v6))
		}
		t.Logf("over %s: client-ProxySQL TLS verified with the cluster CA, ProxySQL-MariaDB cipher %s", s.p.Addr(v6), cipher)
	}
}
