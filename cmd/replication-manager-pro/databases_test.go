package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/api"
	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/haproxy"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/proxysql"
	"replication-manager-pro/tenant"
)

// runCmdIn runs the binary's root command with stdin.
func runCmdIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		e, ok := err.(exitError)
		if !ok {
			t.Fatalf("unexpected error %v", err)
		}
		code = e.code
	}
	return out.String(), errb.String(), code
}

// tenantStack is a TLS cluster with the daemon, a real ProxySQL and a real HAProxy in front.
type tenantStack struct {
	c        *testenv.Cluster
	p        *testenv.ProxySQL
	h        *testenv.HAProxy
	hsPort   int
	datadir  string
	apiPort  int
	tls      string // go-sql-driver TLS config name: verifies against the cluster CA
	errb     *lockedBuffer
	conn     []string
	stopOnce func()
}

var e2eTLSSeq atomic.Int64

// startTenantStack starts everything as an operator would: three MariaDB servers serving
// TLS with the cluster's certificates (tag ssl), ProxySQL from the cnf the settings
// generate (backend and frontend TLS with the cluster's certificates, tag ssl), HAProxy
// from its generated configuration, then the daemon, which bootstraps ProxySQL.
func startTenantStack(t *testing.T) *tenantStack {
	t.Helper()
	testenv.RequireMariaDB(t)
	testenv.RequireHAProxy(t)
	p := testenv.NewProxySQL(t)
	dir := testenv.ShortTempDir(t)
	datadir := filepath.Join(dir, "data")
	// The cluster's certificates where the daemon keeps them (<datadir>/<cluster>/):
	// the published CA is read from there.
	files, err := configurator.ClusterTLS(filepath.Join(datadir, "t1"), "t1", nil)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(datadir, "t1")
	c := testenv.StartCluster(t, 3, testenv.WithArgs(
		"--ssl-ca="+filepath.Join(certs, "ca-cert.pem"), "--ssl-cert="+filepath.Join(certs, "server-cert.pem"), "--ssl-key="+filepath.Join(certs, "server-key.pem")))
	s := &tenantStack{c: c, p: p, datadir: datadir, errb: &lockedBuffer{}}
	s.apiPort = testenv.FreePort(t)
	wp, rp, sp := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	s.hsPort = wp
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr(), c.Servers[2].Addr()}
	body := fmt.Sprintf(`[Default]
monitoring-datadir = %q
monitoring-ticker = 0.2
api-bind = "127.0.0.1"
api-port = %d
http-bind-address = "127.0.0.1"
http-port = %d
api-credentials = "admin:%s"

[t1]
db-servers-hosts = %q
db-servers-prefered-master = %q
db-servers-credential = "%s:%s"
replication-credential = "%s:%s"
db-servers-connect-timeout = 1
failover-mode = "automatic"
failover-falsepositive-ping-counter = 3
prov-db-tags = "innodb,ssl"
prov-proxy-tags = "masterslave,ssl"
proxysql = true
proxysql-servers = "127.0.0.1"
proxysql-servers-ipv6 = "[::1]"
proxysql-port = %d
proxysql-admin-port = %d
proxysql-user = %q
proxysql-password = %q
proxysql-bootstrap = true
proxysql-bootstrap-hostgroups = true
haproxy = true
haproxy-servers = "127.0.0.1"
haproxy-servers-ipv6 = "[::1]"
haproxy-ip-write-bind = "127.0.0.1"
haproxy-ip-read-bind = "127.0.0.1"
haproxy-write-port = %d
haproxy-read-port = %d
haproxy-stat-port = 0
haproxy-api-port = %d
`, datadir, s.apiPort, testenv.FreePort(t), cliAPIPassword, strings.Join(hosts, ","), hosts[0],
		testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword,
		p.Port, p.AdminPort, p.AdminUser, p.AdminPassword, wp, rp, sp)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cfg.Clusters[0]

	// ProxySQL, as the settings describe it, bound on 127.0.0.1 and [::1].
	params, err := proxysql.ConfigParamsFromSettings(&cl.Settings, 0)
	if err != nil {
		t.Fatal(err)
	}
	params.Datadir, params.BindIPv4, params.BindIPv6 = p.Datadir, "127.0.0.1", "[::1]"
	params.SSLDir = filepath.Join(p.Dir, "ssl")
	if err := os.MkdirAll(params.SSLDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		filepath.Join(params.SSLDir, proxysql.CAFile): files.CA, filepath.Join(params.SSLDir, "client-cert.pem"): files.ClientCert,
		filepath.Join(params.SSLDir, "client-key.pem"): files.ClientKey,
		// ProxySQL serves its clients with these (it would generate self-signed ones).
		filepath.Join(p.Datadir, "proxysql-ca.pem"): files.CA, filepath.Join(p.Datadir, "proxysql-cert.pem"): files.ServerCert,
		filepath.Join(p.Datadir, "proxysql-key.pem"): files.ServerKey,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cnf, err := proxysql.GenerateConfig(params)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(cnf)

	// HAProxy from its generated configuration (the daemon drives its runtime API).
	hs, err := haproxy.SettingsFrom(cl, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(hs.WorkDir, 0o750); err != nil {
		t.Fatal(err)
	}
	hcfg, err := haproxy.Config(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.h = testenv.StartHAProxy(t, hcfg)

	// The daemon, its tenant user sync every 300 ms instead of every minute.
	prev := tenantSyncInterval
	tenantSyncInterval = 300 * time.Millisecond
	t.Cleanup(func() { tenantSyncInterval = prev })
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(s.errb)
	root.SetErr(s.errb)
	root.SetArgs([]string{"monitor", "--config", cfgPath})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitUntil(t, 30*time.Second, "the daemon's API and a running cluster", func() bool {
		res, err := hc.Get("https://127.0.0.1:" + strconv.Itoa(s.apiPort) + "/api/clusters/t1/status")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var st map[string]string
		json.NewDecoder(res.Body).Decode(&st)
		return st["alive"] == "running"
	}, s)
	certPath, _ := api.GeneratedCertPaths(datadir)
	s.conn = []string{"--host", "127.0.0.1", "--port", strconv.Itoa(s.apiPort), "--user", "admin", "--cert", certPath, "--cluster", "t1"}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(files.CA)
	s.tls = "e2e-tenant-" + strconv.FormatInt(e2eTLSSeq.Add(1), 10)
	if err := mysql.RegisterTLSConfig(s.tls, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(s.tls) })
	return s
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, s *tenantStack) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; daemon log:\n%s", what, lastLines(s.errb.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (s *tenantStack) client(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv(passwordEnv, cliAPIPassword)
	return runCmdIn(t, stdin, append(append([]string{"client"}, args...), s.conn...)...)
}

// dial opens a connection as a published URL says (its host replaced by via when not
// empty), with TLS verifying the cluster CA when withTLS.
func (s *tenantStack) dial(raw, via string, withTLS bool) (*sql.DB, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	pw, _ := u.User.Password()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = u.User.Username(), pw, "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	if via != "" {
		c.Addr = via
	}
	if withTLS {
		c.TLSConfig = s.tls
	}
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 3*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// routes are the four ways in: ProxySQL over IPv6 (url) and IPv4 (url_v4), HAProxy's
// write port over IPv6 and IPv4, with the same credentials.
func (s *tenantStack) routes(tn tenant.Tenant) map[string][2]string {
	hp := strconv.Itoa(s.hsPort)
	return map[string][2]string{
		"proxysql url":      {tn.Published.URL, ""},
		"proxysql url_v4":   {tn.Published.URLv4, ""},
		"haproxy [::1]":     {tn.Published.URL, net.JoinHostPort("::1", hp)},
		"haproxy 127.0.0.1": {tn.Published.URLv4, net.JoinHostPort("127.0.0.1", hp)},
	}
}

// write inserts a row through every route and returns the server_id that took each write;
// a route's connection is retried for up to 30 s (a proxy moving its writer).
func (s *tenantStack) writeEverywhere(t *testing.T, tn tenant.Tenant, tag string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for name, r := range s.routes(tn) {
		var last error
		deadline := time.Now().Add(30 * time.Second)
		for {
			last = func() error {
				db, err := s.dial(r[0], r[1], true)
				if err != nil {
					return err
				}
				defer db.Close()
				if _, err := db.Exec("CREATE TABLE IF NOT EXISTS w (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64), via VARCHAR(64))"); err != nil {
					return err
				}
				tx, err := db.Begin()
				if err != nil {
					return err
				}
				defer tx.Rollback()
				if _, err := tx.Exec("INSERT INTO w (tag, via) VALUES (?, ?)", tag, name); err != nil {
					return err
				}
				var id int
				if err := tx.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
					return err
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				out[name] = id
				return nil
			}()
			if last == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s: no write through %s within 30 s: %v\ndaemon log:\n%s", tn.Reference, tag, name, last, lastLines(s.errb.String(), 30))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return out
}

func (s *tenantStack) list(t *testing.T) map[string]tenant.Tenant {
	t.Helper()
	out, errs, code := s.client(t, "", "databases", "list", "--json")
	if code != 0 {
		t.Fatalf("databases list: exit %d %s", code, errs)
	}
	var l []tenant.Tenant
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]tenant.Tenant{}
	for _, x := range l {
		m[x.Reference] = x
	}
	return m
}

// The story's second half end to end: tenants request databases through the CLI, get URLs
// for IPv6 and IPv4 through the cluster's ProxySQL (and the same accounts work through
// HAProxy), connect with TLS verifying the cluster CA and are refused without TLS, cannot
// reach each other's databases, and keep writing through both proxies after a switchover
// and after the master is killed and failed over; a removed tenant is gone from ProxySQL.
func TestTenantDatabasesThroughProxiesAcrossFailover(t *testing.T) {
	s := startTenantStack(t)
	hostile := `pa'ss"wo\rd\\`
	out, errs, code := s.client(t, hostile+"\n", "databases", "add", "SOFTINST-1", "--db-password-stdin")
	if code != 0 || !strings.Contains(out, "created: SOFTINST-1") || strings.Contains(out, "pa'ss") {
		t.Fatalf("add SOFTINST-1: exit %d %q %q", code, out, errs)
	}
	if out, errs, code := s.client(t, "", "databases", "add", "wordpress", "--charset", "utf8mb4_bin"); code != 0 || !strings.Contains(out, "mysql://wordpress:xxxxx@") {
		t.Fatalf("add wordpress: exit %d %q %q", code, out, errs)
	}
	if _, errs, code := s.client(t, "", "databases", "add", "../../x"); code != 1 || !strings.Contains(errs, "reference") {
		t.Fatalf("hostile reference: exit %d %q", code, errs)
	}
	ts := s.list(t)
	a, b := ts["SOFTINST-1"], ts["wordpress"]
	if !strings.Contains(a.Published.URL, fmt.Sprintf("@[::1]:%d/db_softinst_1", s.p.Port)) || !strings.Contains(a.Published.URLv4, fmt.Sprintf("@127.0.0.1:%d/", s.p.Port)) {
		t.Fatalf("published %+v", a.Published)
	}
	if u, _ := url.Parse(a.Published.URL); u != nil {
		if pw, _ := u.User.Password(); pw != hostile {
			t.Fatalf("published password %q", pw)
		}
	}
	if !strings.Contains(a.Published.SSLCA, "BEGIN CERTIFICATE") {
		t.Fatal("no CA published")
	}
	if out, _, _ := s.client(t, "", "databases", "list"); strings.Contains(out, "pa%27ss") || !strings.Contains(out, "SOFTINST-1") {
		t.Fatalf("list shows a password or misses a tenant:\n%s", out)
	}

	ids := s.writeEverywhere(t, a, "start")
	masterID := s.c.Servers[0].ServerID()
	for route, id := range ids {
		if id != masterID {
			t.Fatalf("%s: write taken by server %d, the master is %d", route, id, masterID)
		}
	}
	s.writeEverywhere(t, b, "start")

	t.Run("without TLS refused, other tenants' databases closed", func(t *testing.T) {
		for name, r := range s.routes(a) {
			if db, err := s.dial(r[0], r[1], false); err == nil {
				db.Close()
				t.Errorf("%s: a connection without TLS was accepted", name)
			}
			db, err := s.dial(r[0], r[1], true)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"SELECT COUNT(*) FROM db_wordpress.w", "SELECT COUNT(*) FROM mysql.user"} {
				if _, err := db.Exec(q); err == nil {
					t.Errorf("%s: SOFTINST-1 could run %q", name, q)
				}
			}
			// ProxySQL answers USE itself and applies it at the next statement: check both.
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, err1 := conn.ExecContext(context.Background(), "USE db_wordpress")
			_, err2 := conn.ExecContext(context.Background(), "SELECT COUNT(*) FROM w")
			if err1 == nil && err2 == nil {
				t.Errorf("%s: SOFTINST-1 could use db_wordpress", name)
			}
			conn.Close()
			db.Close()
		}
	})

	// Switchover through the CLI: both proxies follow; writes go on through every route.
	if out, errs, code := s.client(t, "", "switchover", "--prefered", s.c.Servers[1].Addr()); code != 0 {
		t.Fatalf("switchover: exit %d %q %q", code, out, errs)
	}
	for route, id := range s.writeEverywhere(t, a, "after switchover") {
		if id != s.c.Servers[1].ServerID() {
			t.Fatalf("after the switchover %s wrote to server %d, want %d", route, id, s.c.Servers[1].ServerID())
		}
	}
	s.writeEverywhere(t, b, "after switchover")

	// Failover: the new master killed; the daemon fails over by itself.
	s.c.Servers[1].Kill()
	waitUntil(t, 60*time.Second, "an automatic failover", func() bool {
		out, _, code := s.client(t, "", "topology", "--json")
		if code != 0 {
			return false
		}
		var servers []api.DBServer
		json.Unmarshal([]byte(out), &servers)
		for _, sv := range servers {
			if sv.State == "Master" && sv.URL != s.c.Servers[1].Addr() {
				return true
			}
		}
		return false
	}, s)
	ids = s.writeEverywhere(t, a, "after failover")
	t.Logf("writes after the failover taken by servers %v (the killed master was %d)", ids, s.c.Servers[1].ServerID())
	for route, id := range ids {
		if id == s.c.Servers[1].ServerID() {
			t.Fatalf("after the failover %s wrote to the dead master", route)
		}
	}
	s.writeEverywhere(t, b, "after failover")
	// Every acknowledged row is there.
	db, err := s.dial(a.Published.URLv4, "", true)
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM w").Scan(&rows); err != nil || rows != 12 {
		t.Fatalf("SOFTINST-1 has %d rows (%v), want 12", rows, err)
	}
	db.Close()

	// A tenant user lost by ProxySQL (a restart on a fresh datadir, a manual delete) comes
	// back with use_ssl from the daemon's periodic sync.
	admin := s.p.AdminDB(t, true)
	for _, q := range []string{"DELETE FROM mysql_users WHERE username = 'softinst1'", "LOAD MYSQL USERS TO RUNTIME"} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "softinst1 back in ProxySQL's runtime with use_ssl", func() bool {
		var n int
		admin.QueryRow("SELECT COUNT(*) FROM runtime_mysql_users WHERE username = 'softinst1' AND use_ssl = 1 AND frontend = 1").Scan(&n)
		return n == 1
	}, s)

	// Removal through the CLI: the user leaves ProxySQL's runtime, the URLs stop working.
	if out, errs, code := s.client(t, "", "databases", "remove", "wordpress"); code != 0 || !strings.Contains(out, "removed: wordpress") {
		t.Fatalf("remove: exit %d %q %q", code, out, errs)
	}
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM runtime_mysql_users WHERE username = 'wordpress'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("wordpress still in ProxySQL's runtime (%d rows, %v)", n, err)
	}
	if db, err := s.dial(b.Published.URLv4, "", true); err == nil {
		db.Close()
		t.Fatal("the removed tenant still logs in")
	}
	if strings.Contains(s.errb.String(), hostile) || strings.Contains(s.errb.String(), testenv.RootPassword) {
		t.Fatal("the daemon's log shows a password")
	}
}

// slapos render takes the shared instances from their own file too, and refuses a hostile
// one naming the file and the entry, writing nothing.
func TestSlaposRenderSharedInstancesFile(t *testing.T) {
	dir := t.TempDir()
	params := filepath.Join(dir, "request.json")
	os.WriteFile(params, []byte(`{"repman-cluster-dict": {"c1": {"database-amount": 2}}}`), 0o600)
	shared := filepath.Join(dir, "shared.json")
	os.WriteFile(shared, []byte(`[{"slave_reference": "SOFTINST-3", "db_charset": "latin1"}]`), 0o600)
	out := filepath.Join(dir, "out")
	if o, errs, code := runCmd(t, "slapos", "render", "--parameters", params, "--shared-instances", shared, "--out", out); code != 0 {
		t.Fatalf("render: exit %d %s %s", code, o, errs)
	}
	b, err := os.ReadFile(filepath.Join(out, "databases.json"))
	if err != nil || !strings.Contains(string(b), `"reference": "SOFTINST-3"`) || !strings.Contains(string(b), `"db_charset": "latin1"`) {
		t.Fatalf("databases.json: %v\n%s", err, b)
	}
	os.WriteFile(shared, []byte(`[{"slave_reference": "x'; DROP DATABASE mysql; --"}]`), 0o600)
	out2 := filepath.Join(dir, "out2")
	if _, errs, code := runCmd(t, "slapos", "render", "--parameters", params, "--shared-instances", shared, "--out", out2); code != 1 || !strings.Contains(errs, shared+": slave_instance_list[0]: slave_reference") {
		t.Fatalf("hostile: exit %d %s", code, errs)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Fatal("a refused render wrote its output directory")
	}
}
