package proxysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql"
	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/topology"
)

// TestContractDoubleAgainstRealProxySQL runs one scenario on the real ProxySQL (in front of
// real MariaDB, its monitor acting on real read_only) and on proxysqltest.AdminDouble (its
// monitor told the same read_only values), through two Routers of the same options, and
// compares their tables after every step: runtime and configured servers, replication
// hostgroups, users, the disk copy. The double is only as good as this test says.
func TestContractDoubleAgainstRealProxySQL(t *testing.T) {
	s := startStack(t, stackConfig{opts: func(o *proxysql.Options) { o.SaveToDisk = true }})
	d, err := proxysqltest.Start(proxysqltest.Options{User: s.p.AdminUser, Password: s.p.AdminPassword, Host: "::1",
		WriterIsAlsoReader: proxysqltest.Bool(false)}) // as the cnf sets it without tag readonmaster
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// The double starts as ProxySQL does from the cnf (GenerateConfig's rows and user).
	seed := []string{fmt.Sprintf("REPLACE INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (%d, %d, 'replication-manager')", hg.Writer, hg.Reader)}
	for _, a := range s.addrs() {
		seed = append(seed, fmt.Sprintf("REPLACE INTO mysql_servers (hostgroup_id, hostname, port, weight, max_connections, max_replication_lag, use_ssl) VALUES (%d, '%s', %d, %d, %d, %d, 0)",
			hg.Reader, a.Host, a.Port, s.params.Weight, s.params.MaxConnections, s.params.MaxReplicationLag))
	}
	for _, u := range s.params.Users {
		seed = append(seed, fmt.Sprintf("REPLACE INTO mysql_users (username, password, default_hostgroup, active, transaction_persistent) VALUES ('%s', '%s', %d, 1, 1)", u.Username, u.Password, hg.Writer))
	}
	seed = append(seed, "LOAD MYSQL SERVERS TO RUNTIME", "LOAD MYSQL USERS TO RUNTIME", "SAVE MYSQL SERVERS TO DISK", "SAVE MYSQL USERS TO DISK")
	for _, q := range seed {
		if err := d.Exec(q); err != nil {
			t.Fatalf("seed the double: %s: %v", q, err)
		}
	}
	// The double's monitor learns what the real one reads.
	readOnly := func(i int, ro bool) {
		v := map[bool]string{true: "1", false: "0"}[ro]
		s.c.Servers[i].Exec(t, "SET GLOBAL read_only = "+v)
		d.SimulateReadOnly(s.c.Servers[i].Host(), s.c.Servers[i].Port(), ro)
	}
	for i := range s.c.Servers {
		readOnly(i, i != 0)
	}

	do := s.opts
	do.Admin.Addr = d.Addr()
	dr, err := proxysql.New(do)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dr.Close() })
	dd := sqlDB(t, d.Addr(), s.p.AdminUser, s.p.AdminPassword)

	tables := []struct{ name, cols string }{
		{"runtime_mysql_servers", "hostgroup_id, hostname, port, status, weight, compression, max_connections, max_replication_lag, use_ssl, comment"},
		{"mysql_servers", "hostgroup_id, hostname, port, status, weight, compression, max_connections, max_replication_lag, use_ssl, comment"},
		{"disk.mysql_servers", "hostgroup_id, hostname, port, status"},
		{"runtime_mysql_replication_hostgroups", "writer_hostgroup, reader_hostgroup, check_type, comment"},
		{"mysql_users", "username, password, active, default_hostgroup, transaction_persistent"},
		{"runtime_mysql_users", "username, password, active, default_hostgroup, frontend, backend"},
	}
	compare := func(step string) {
		t.Helper()
		for _, tb := range tables {
			q := "SELECT " + tb.cols + " FROM " + tb.name
			want := dump(t, dd, q)
			var got []string
			deadline := time.Now().Add(5 * time.Second) // ProxySQL's monitor checks every second
			for {
				got = dump(t, s.admin, q)
				if strings.Join(got, "\n") == strings.Join(want, "\n") || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s: %s differs\nProxySQL 2.7.1:\n  %s\ndouble:\n  %s", step, tb.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}
	both := func(step string, f func(r *proxysql.Router) error) {
		t.Helper()
		if err := f(s.r); err != nil {
			t.Fatalf("%s on ProxySQL: %v", step, err)
		}
		if err := f(dr); err != nil {
			t.Fatalf("%s on the double: %v", step, err)
		}
		compare(step)
	}
	compare("started from the cnf")

	m := s.monitor("manual")
	snap := tickUntil(t, m, 10*time.Second, "healthy", healthy)
	ctx := context.Background()
	both("bootstrap", func(r *proxysql.Router) error { return r.Bootstrap(ctx, snap) })
	both("unchanged tick", func(r *proxysql.Router) error { return r.Reconcile(ctx, snap) })

	readOnly(2, false)
	compare("replica s2 made writable")
	writable := with(snap, 2, func(x *topology.Server) { x.ReadOnly = false })
	both("tick with s2 writable", func(r *proxysql.Router) error { return r.Reconcile(ctx, writable) })
	readOnly(2, true)
	compare("s2 read-only again")

	readOnly(1, false)
	readOnly(0, true)
	both("failover s0 -> s1", func(r *proxysql.Router) error { return r.Failover(ctx, addrOf(s.c.Servers[0]), addrOf(s.c.Servers[1])) })
	both("maintenance of s2", func(r *proxysql.Router) error { return r.Maintenance(ctx, addrOf(s.c.Servers[2]), true) })
	both("maintenance of s2 over", func(r *proxysql.Router) error { return r.Maintenance(ctx, addrOf(s.c.Servers[2]), false) })
	after := snapshotAfterFailover(snap)
	both("tick after the failover", func(r *proxysql.Router) error { return r.Reconcile(ctx, after) })
	standalone := with(after, 2, func(x *topology.Server) {
		x.State, x.Replications, x.Role = topology.StateStandAlone, nil, topology.RoleStandalone
	})
	both("s2 standalone", func(r *proxysql.Router) error { return r.Reconcile(ctx, standalone) })
	both("s2 replica again", func(r *proxysql.Router) error { return r.Reconcile(ctx, after) })

	// Neither takes prepared statements.
	for name, db := range map[string]*sql.DB{"ProxySQL": s.admin, "double": dd} {
		if st, err := db.Prepare("SELECT hostname FROM mysql_servers"); err == nil {
			st.Close()
			t.Errorf("%s's admin interface accepted a prepared statement", name)
		}
	}
}

// snapshotAfterFailover is snap with s1 the master and s0, s2 its replicas.
func snapshotAfterFailover(snap *topology.Snapshot) *topology.Snapshot {
	c := *snap
	c.Servers = append([]topology.Server(nil), snap.Servers...)
	src := c.Servers[1].Addr
	c.Master = 1
	c.Servers[1].State, c.Servers[1].Role, c.Servers[1].ReadOnly, c.Servers[1].Replications = topology.StateMaster, topology.RoleMaster, false, nil
	for _, i := range []int{0, 2} {
		c.Servers[i].State, c.Servers[i].Role, c.Servers[i].ReadOnly = topology.StateSlave, topology.RoleReplica, true
		c.Servers[i].Replications = []topology.Replication{{Source: src, IO: topology.ThreadYes, SQL: topology.ThreadYes}}
	}
	c.Time = time.Now()
	return &c
}

func sqlDB(t *testing.T, addr ipv6.HostPort, user, password string) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr.String()
	cfg.Timeout, cfg.ReadTimeout = 2*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// dump returns a query's rows, columns joined by spaces, NULL as NULL, sorted.
func dump(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rs.Scan(p...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = x.String
			if !x.Valid {
				parts[i] = "NULL"
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	sort.Strings(out)
	return out
}
