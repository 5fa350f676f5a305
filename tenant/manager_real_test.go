package tenant_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/tenant"
)

// tlsCluster starts n MariaDB servers serving TLS with a fresh cluster CA; it returns the
// cluster, the CA pool and the CA's directory.
func tlsCluster(t *testing.T, n int) (*testenv.Cluster, *x509.CertPool, string) {
	t.Helper()
	testenv.RequireMariaDB(t)
	dir := testenv.ShortTempDir(t)
	files, err := configurator.ClusterTLS(dir, "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files.CA) {
		t.Fatal("CA not parsed")
	}
	c := testenv.StartCluster(t, n, testenv.WithArgs(
		"--ssl-ca="+filepath.Join(dir, "ca-cert.pem"),
		"--ssl-cert="+filepath.Join(dir, "server-cert.pem"),
		"--ssl-key="+filepath.Join(dir, "server-key.pem")))
	return c, pool, dir
}

var tlsSeq atomic.Int64

// tlsName registers a go-sql-driver TLS configuration verifying the server against pool.
func tlsName(t *testing.T, pool *x509.CertPool) string {
	name := "tenant-test-" + strconv.FormatInt(tlsSeq.Add(1), 10)
	if err := mysql.RegisterTLSConfig(name, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(name) })
	return name
}

// openURL connects as a published URL says; tlsCfg "" connects without TLS.
func openURL(t *testing.T, raw, tlsCfg string) (*sql.DB, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	pw, _ := u.User.Password()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = u.User.Username(), pw, "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	c.TLSConfig = tlsCfg
	c.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

type rig struct {
	t       *testing.T
	c       *testenv.Cluster
	m       *tenant.Manager
	proxy   *proxysqltest.AdminDouble
	tls     string
	closers []func()
}

// newRig builds a Manager on the cluster's master (as root, the db-servers-credential of
// the tests) with the other servers, a ProxySQL admin double for the user sync, and
// endpoints pointing straight at the master (127.0.0.1 and [::1]).
func newRig(t *testing.T, c *testenv.Cluster, pool *x509.CertPool) *rig {
	t.Helper()
	d, err := proxysqltest.Start(proxysqltest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	open := func(s *testenv.Server) *mariadb.Server {
		srv, err := mariadb.Open(ipv6.HostPort{Host: s.Host(), Port: s.Port()}, testenv.RootUser, testenv.RootPassword, mariadb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	st := config.Defaults()
	st.ProxySQL = true
	st.ProxySQLServers = d.Addr().String()
	st.ProxySQLUser, st.ProxySQLPassword = "admin", "admin"
	st.ProxySQLWriterHostgroup = 10
	st.ProxySQLSaveToDisk = true
	st.ProvProxyTags = "masterslave,ssl" // the proxy speaks TLS: tenants' users get use_ssl
	proxies, closeProxies, err := tenant.ProxySQLUsers("c1", &st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeProxies)
	sealer, err := tenant.LoadOrCreateSealer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &tenant.Manager{
		Cluster: "c1", Master: open(c.Master()), Proxies: proxies, Sealer: sealer,
		Endpoints:     tenant.Endpoints{Proxy: "direct", IPv6: "::1", IPv4: "127.0.0.1", Port: c.Master().Port(), TLS: true},
		ReservedUsers: []string{testenv.RootUser, testenv.ReplUser},
		Log:           quiet(),
	}
	for _, r := range c.Replicas() {
		m.Servers = append(m.Servers, open(r))
	}
	return &rig{t: t, c: c, m: m, proxy: d, tls: tlsName(t, pool)}
}

func (r *rig) gtid() string { return r.c.Master().QueryString(r.t, "SELECT @@gtid_binlog_pos") }

func (r *rig) list() map[string]tenant.Tenant {
	r.t.Helper()
	l, err := r.m.List(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]tenant.Tenant{}
	for _, x := range l {
		out[x.Reference] = x
	}
	return out
}

// onEveryNode checks a query's answer on every server once replication caught up.
func (r *rig) onEveryNode(query, want string, args ...any) {
	r.t.Helper()
	r.c.WaitSync(r.t)
	for i, s := range r.c.Servers {
		if got := s.QueryString(r.t, query, args...); got != want {
			r.t.Fatalf("server %d: %s = %q, want %q", i, query, got, want)
		}
	}
}

func specs(refs ...string) []tenant.Spec {
	var out []tenant.Spec
	for _, ref := range refs {
		out = append(out, tenant.Spec{Reference: ref, RequireSSL: true})
	}
	return out
}

// One cluster for the whole life cycle: created on the master and replicated with the
// master's GTIDs, SSL-only accounts for the three hosts, published URLs that work over IPv6
// and IPv4 with TLS and refuse plain connections, isolation between tenants (including
// names a GRANT would read as wildcards), idempotence down to the binary log, refused input
// and conflicts that change nothing, a password set once, removal on every node with the
// tenant's sessions ended and its proxy user gone.
func TestRealTenantLifeCycle(t *testing.T) {
	c, pool, _ := tlsCluster(t, 3)
	r := newRig(t, c, pool)
	ctx := context.Background()
	hostile := `q'uo"te\back\\slash; DROP USER root --`

	res, err := r.m.Converge(ctx, []tenant.Spec{
		{Reference: "SOFTINST-1", RequireSSL: true},
		{Reference: "wordpress", Password: hostile, Charset: "utf8mb4_bin", RequireSSL: true},
		{Reference: "a-b", RequireSSL: true},
		{Reference: "axb", RequireSSL: true},
		{Reference: "plain", RequireSSL: false, Charset: "latin1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 5 || len(res.ProxyErrors) != 0 {
		t.Fatalf("result %+v", res)
	}
	ts := r.list()
	sw := ts["SOFTINST-1"]
	if sw.Database != "db_softinst_1" || sw.User != "softinst1" || !sw.RequireSSL || sw.State != "ready" {
		t.Fatalf("SOFTINST-1: %+v", sw)
	}
	if !strings.HasPrefix(sw.Published.URL, "mysql://softinst1:") || !strings.HasSuffix(sw.Published.URL, fmt.Sprintf("@[::1]:%d/db_softinst_1", c.Master().Port())) {
		t.Fatalf("url %s", sw.Published.URL)
	}

	t.Run("replicated with the master's GTIDs", func(t *testing.T) {
		r.onEveryNode("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('db_softinst_1', 'db_wordpress', 'db_plain')", "3")
		r.onEveryNode("SELECT GROUP_CONCAT(Host ORDER BY Host) FROM mysql.user WHERE User = 'softinst1'", "%,::,localhost")
		r.onEveryNode("SELECT COUNT(*) FROM mysql.user WHERE User = 'softinst1' AND ssl_type = 'ANY'", "3")
		r.onEveryNode("SELECT COUNT(*) FROM mysql.user WHERE User = 'plain' AND ssl_type = ''", "3")
		r.onEveryNode("SELECT COUNT(*) FROM "+mariadb.TenantSchema+"."+mariadb.TenantTable+" WHERE state = 'ready'", "5")
		r.onEveryNode("SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'db_wordpress'", "utf8mb4 utf8mb4_bin")
		r.onEveryNode("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'db_plain'", "latin1")
		master := c.Master().QueryString(t, "SELECT @@gtid_binlog_pos")
		for i, s := range c.Replicas() {
			if got := s.QueryString(t, "SELECT @@gtid_current_pos"); got != master {
				t.Fatalf("replica %d at %s, master at %s", i+1, got, master)
			}
		}
	})

	t.Run("urls work with TLS over both families and refuse plain connections", func(t *testing.T) {
		for _, raw := range []string{sw.Published.URL, sw.Published.URLv4, ts["wordpress"].Published.URL} {
			db, err := openURL(t, raw, r.tls)
			if err != nil {
				t.Fatalf("%s with TLS: %v", redact(raw), err)
			}
			if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			var cipher string
			var name string
			if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
				t.Fatalf("no TLS cipher: %q %v", cipher, err)
			}
			if _, err := openURL(t, raw, ""); err == nil {
				t.Fatalf("%s: a connection without TLS was accepted", redact(raw))
			} else if !isAccessDenied(err) {
				t.Fatalf("%s without TLS: %v, want access denied", redact(raw), err)
			}
		}
		if _, err := openURL(t, ts["plain"].Published.URLv4, ""); err != nil {
			t.Fatalf("require_ssl false, plain connection refused: %v", err)
		}
		// The hostile password works as given, quotes and backslashes included.
		u, _ := url.Parse(ts["wordpress"].Published.URLv4)
		if pw, _ := u.User.Password(); pw != hostile {
			t.Fatalf("published password %q, want the requested one", pw)
		}
	})

	t.Run("a tenant cannot see or open another's database", func(t *testing.T) {
		ab, err := openURL(t, ts["a-b"].Published.URLv4, r.tls)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := ab.Query("SHOW DATABASES")
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			seen = append(seen, n)
		}
		rows.Close()
		sort.Strings(seen)
		want := []string{"information_schema", ts["a-b"].Database}
		sort.Strings(want)
		if !reflect.DeepEqual(seen, want) {
			t.Fatalf("a-b sees %v, want %v", seen, want)
		}
		// db_a_b as a GRANT pattern would match db_axb: the grant escapes its '_'.
		for _, q := range []string{"USE " + ts["axb"].Database, "SELECT 1 FROM " + ts["axb"].Database + ".t", "CREATE DATABASE db_a1b",
			"USE db_wordpress", "USE mysql", "SELECT COUNT(*) FROM " + mariadb.TenantSchema + "." + mariadb.TenantTable} {
			if _, err := ab.Exec(q); err == nil {
				t.Fatalf("tenant a-b could run %q", q)
			}
		}
		if _, err := ab.Exec("CREATE TABLE own (x INT)"); err != nil {
			t.Fatalf("a-b cannot use its own database: %v", err)
		}
	})

	t.Run("proxy users", func(t *testing.T) {
		got := r.proxy.Dump("runtime_mysql_users", "username", "password", "use_ssl", "default_hostgroup", "frontend")
		var users []string
		for _, l := range got {
			f := strings.Fields(l)
			if f[4] == "1" {
				users = append(users, f[0]+" "+f[2]+" "+f[3])
				if f[1] != mariadb.NativePasswordHash(passwordOf(t, ts[referenceOf(ts, f[0])])) {
					t.Fatalf("proxy hash of %s differs from the password's", f[0])
				}
			}
		}
		sort.Strings(users)
		want := []string{ts["a-b"].User + " 1 10", ts["axb"].User + " 1 10", "plain 0 10", "softinst1 1 10", "wordpress 1 10"}
		sort.Strings(want)
		if !reflect.DeepEqual(users, want) {
			t.Fatalf("runtime users %v, want %v", users, want)
		}
	})

	t.Run("idempotent: a repeated call writes nothing", func(t *testing.T) {
		before, rowsBefore := r.gtid(), r.list()
		r.proxy.ResetStatements()
		res, err := r.m.Converge(ctx, []tenant.Spec{
			{Reference: "SOFTINST-1", RequireSSL: true, Password: "another-password"},
			{Reference: "wordpress", RequireSSL: true, Charset: "latin1"},
			{Reference: "a-b", RequireSSL: true}, {Reference: "axb", RequireSSL: true},
			{Reference: "plain", RequireSSL: false},
		})
		if err != nil || res.Changed() || len(res.Unchanged) != 5 {
			t.Fatalf("repeat: %+v %v", res, err)
		}
		if after := r.gtid(); after != before {
			t.Fatalf("binary log moved from %s to %s", before, after)
		}
		if w := r.proxy.Writes(); len(w) != 0 {
			t.Fatalf("proxy written: %v", w)
		}
		if !reflect.DeepEqual(r.list(), rowsBefore) {
			t.Fatal("published parameters changed")
		}
		// The password and charset were set at creation only.
		if _, err := openURL(t, rowsBefore["SOFTINST-1"].Published.URLv4, r.tls); err != nil {
			t.Fatalf("first password no longer works: %v", err)
		}
		res, err = r.m.Add(ctx, tenant.Spec{Reference: "SOFTINST-1", RequireSSL: true, Password: "x"})
		if err != nil || res.Changed() {
			t.Fatalf("add again: %+v %v", res, err)
		}
		if r.gtid() != before {
			t.Fatal("Add of an existing tenant wrote to the binary log")
		}
	})

	t.Run("refused input and conflicts change nothing", func(t *testing.T) {
		c.Master().Exec(t, "CREATE DATABASE db_conflict")
		c.Master().Exec(t, "CREATE USER clash@'%' IDENTIFIED BY 'x'")
		c.WaitSync(t)
		before, rowsBefore := r.gtid(), r.list()
		long := strings.Repeat("x", 300)
		for _, ref := range []string{"x'; DROP DATABASE mysql; --", "../../x", long, "ünïcödé", "mysql", "information_schema"} {
			_, err := tenant.ValidateAll([]tenant.Request{{Reference: "SOFTINST-9"}, {Reference: ref}})
			var fe *tenant.FieldError
			if !errors.As(err, &fe) || fe.Field != "databases[1].reference" {
				t.Fatalf("%.40q: %v", ref, err)
			}
		}
		for _, c := range []struct {
			refs []string
			want string
		}{
			{[]string{"SOFTINST-9", "conflict"}, "conflict"}, // a database the manager did not create
			{[]string{"SOFTINST-9", "clash"}, "clash"},       // an account the manager did not create
			{[]string{"SOFTINST-9", "repl"}, "repl"},         // the cluster's replication account
		} {
			_, err := r.m.Converge(ctx, append(specs("SOFTINST-1", "wordpress", "a-b", "axb", "plain"), specs(c.refs...)...))
			var ce *tenant.ConflictError
			var fe *tenant.FieldError
			if !errors.As(err, &ce) && !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v: %v", c.refs, err)
			}
		}
		if _, err := r.m.Add(ctx, tenant.Spec{Reference: "conflict", RequireSSL: true}); err == nil {
			t.Fatal("Add took over db_conflict")
		}
		if after := r.gtid(); after != before {
			t.Fatalf("refused requests wrote to the binary log: %s -> %s", before, after)
		}
		if !reflect.DeepEqual(r.list(), rowsBefore) {
			t.Fatal("refused requests changed the tenants")
		}
	})

	t.Run("require_ssl follows the desired list", func(t *testing.T) {
		res, err := r.m.Converge(ctx, []tenant.Spec{
			{Reference: "SOFTINST-1", RequireSSL: true}, {Reference: "wordpress", RequireSSL: true},
			{Reference: "a-b", RequireSSL: true}, {Reference: "axb", RequireSSL: true}, {Reference: "plain", RequireSSL: true},
		})
		if err != nil || !reflect.DeepEqual(res.Updated, []string{"plain"}) {
			t.Fatalf("%+v %v", res, err)
		}
		if _, err := openURL(t, ts["plain"].Published.URLv4, ""); err == nil {
			t.Fatal("plain connection still accepted")
		}
		r.onEveryNode("SELECT COUNT(*) FROM mysql.user WHERE User = 'plain' AND ssl_type = 'ANY'", "3")
		if got := r.proxy.Dump("mysql_users", "username", "use_ssl"); !contains(got, "plain 1") {
			t.Fatalf("proxy use_ssl not updated: %v", got)
		}
	})

	t.Run("removal drops everything on every node and ends sessions", func(t *testing.T) {
		wp, err := openURL(t, ts["wordpress"].Published.URLv4, r.tls)
		if err != nil {
			t.Fatal(err)
		}
		wp.SetMaxOpenConns(1)
		if _, err := wp.Exec("CREATE TABLE posts (id INT)"); err != nil {
			t.Fatal(err)
		}
		res, err := r.m.Remove(ctx, "wordpress")
		if err != nil || !reflect.DeepEqual(res.Removed, []string{"wordpress"}) || len(res.ProxyErrors) != 0 {
			t.Fatalf("%+v %v", res, err)
		}
		r.onEveryNode("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'db_wordpress'", "0")
		r.onEveryNode("SELECT COUNT(*) FROM mysql.user WHERE User = 'wordpress'", "0")
		r.onEveryNode("SELECT COUNT(*) FROM "+mariadb.TenantSchema+"."+mariadb.TenantTable+" WHERE reference = 'wordpress'", "0")
		if _, err := wp.Exec("SELECT 1"); err == nil {
			t.Fatal("the removed tenant's open session still works")
		}
		if _, err := openURL(t, ts["wordpress"].Published.URLv4, r.tls); err == nil {
			t.Fatal("the removed tenant can still log in")
		}
		if got := r.proxy.Dump("runtime_mysql_users", "username"); contains(got, "wordpress") {
			t.Fatalf("proxy still has wordpress: %v", got)
		}
		if _, err := r.m.Remove(ctx, "wordpress"); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("second removal: %v", err)
		}
		// Converge removes what is no longer listed.
		res, err = r.m.Converge(ctx, specs("SOFTINST-1", "SOFTINST-2"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(res.Removed)
		if !reflect.DeepEqual(res.Created, []string{"SOFTINST-2"}) || !reflect.DeepEqual(res.Removed, []string{"a-b", "axb", "plain"}) {
			t.Fatalf("%+v", res)
		}
		r.onEveryNode("SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'db\\_%'", "db_conflict,db_softinst_1,db_softinst_2")
		if got := r.proxy.Dump("mysql_users", "username"); !reflect.DeepEqual(got, []string{"softinst1", "softinst2"}) {
			t.Fatalf("proxy users %v", got)
		}
	})

	t.Run("an interrupted creation is completed with its first password", func(t *testing.T) {
		sealed, err := r.m.Sealer.Seal("c1", "SOFTINST-3", "first-pw")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.m.Master.InsertTenantRow(ctx, mariadb.TenantRow{Reference: "SOFTINST-3", Database: "db_softinst_3", User: "softinst3",
			Charset: "utf8mb4", RequireSSL: true, State: mariadb.TenantCreating, Secret: sealed}); err != nil {
			t.Fatal(err)
		}
		c.Master().Exec(t, "CREATE DATABASE db_softinst_3") // the crash came after this statement
		res, err := r.m.Converge(ctx, []tenant.Spec{{Reference: "SOFTINST-1", RequireSSL: true}, {Reference: "SOFTINST-2", RequireSSL: true},
			{Reference: "SOFTINST-3", RequireSSL: true, Password: "second-pw"}})
		if err != nil || !reflect.DeepEqual(res.Created, []string{"SOFTINST-3"}) {
			t.Fatalf("%+v %v", res, err)
		}
		u, _ := url.Parse(r.list()["SOFTINST-3"].Published.URLv4)
		if pw, _ := u.User.Password(); pw != "first-pw" {
			t.Fatalf("password %q", pw)
		}
		if _, err := openURL(t, u.String(), r.tls); err != nil {
			t.Fatal(err)
		}
	})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func referenceOf(ts map[string]tenant.Tenant, user string) string {
	for ref, x := range ts {
		if x.User == user {
			return ref
		}
	}
	return ""
}

func passwordOf(t *testing.T, x tenant.Tenant) string {
	u, err := url.Parse(x.Published.URLv4)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return pw
}

func isAccessDenied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1045
}

// redact hides a URL's password in test messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<url>"
	}
	return u.Redacted()
}
