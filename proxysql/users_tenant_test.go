package proxysql

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"replication-manager-pro/proxysql/proxysqltest"
)

// Tenant user sync against the admin-interface test double (proxysqltest).
func TestSyncTenantUsersWithDouble(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	a, err := OpenAdmin(AdminConfig{Addr: d.Addr(), User: "admin", Password: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	hashA := "*0123456789ABCDEF0123456789ABCDEF01234567"
	hashB := "*89ABCDEF0123456789ABCDEF0123456789ABCDEF"
	// A user of another origin (the master's accounts, the cnf) and a tenant user copied by
	// the master sync without the marker.
	for _, q := range []string{
		"INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('app', '*1111111111111111111111111111111111111111', 0)",
		"INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('tb', '" + hashB + "', 0)",
	} {
		if err := d.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	marker := TenantMarker("C1")
	n, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "ta", PasswordHash: hashA, UseSSL: true}, {Username: "tb", PasswordHash: hashB}}, nil, true)
	if err != nil || n != 2 {
		t.Fatalf("first sync: %d changes, %v", n, err)
	}
	want := []string{
		"app *1111111111111111111111111111111111111111 0 0 ",
		"ta " + hashA + " 10 1 rmp-tenant:c1",
		"tb " + hashB + " 10 0 rmp-tenant:c1",
	}
	for _, tbl := range []string{"mysql_users", "disk.mysql_users"} {
		if got := d.Dump(tbl, "username", "password", "default_hostgroup", "use_ssl", "comment"); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n%s\nwant\n%s", tbl, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if got := d.Dump("runtime_mysql_users", "username", "frontend"); len(got) < 3 {
		t.Fatalf("not loaded to runtime: %v", got)
	}

	// Unchanged: nothing written, nothing loaded.
	d.ResetStatements()
	if n, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "tb", PasswordHash: hashB}, {Username: "ta", PasswordHash: hashA, UseSSL: true}}, nil, true); err != nil || n != 0 {
		t.Fatalf("repeated sync: %d changes, %v", n, err)
	}
	if w := d.Writes(); len(w) != 0 {
		t.Fatalf("repeated sync wrote %v", w)
	}

	// ta no longer wanted: deleted (it carries the marker); app (not marked) is kept; tb,
	// wanted, is kept although named in remove.
	if n, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "tb", PasswordHash: hashB}}, []string{"tb"}, true); err != nil || n != 1 {
		t.Fatalf("removal sync: %d changes, %v", n, err)
	}
	got := d.Dump("runtime_mysql_users", "username")
	for _, u := range got {
		if u == "ta" {
			t.Fatalf("ta still in runtime: %v", got)
		}
	}
	if got := d.Dump("mysql_users", "username"); !reflect.DeepEqual(got, []string{"app", "tb"}) {
		t.Fatalf("mysql_users %v, want app, tb", got)
	}
	// A user copied without the marker is deleted when named in remove; others of
	// other origins never.
	if err := d.Exec("INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('tc', '" + hashA + "', 0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "tb", PasswordHash: hashB}}, []string{"tc"}, false); err != nil {
		t.Fatal(err)
	}
	if got := d.Dump("mysql_users", "username"); !reflect.DeepEqual(got, []string{"app", "tb"}) {
		t.Fatalf("mysql_users %v, want app, tb", got)
	}
	// A hash that is not one is refused before reaching ProxySQL.
	if _, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "td", PasswordHash: "x'); DELETE FROM mysql_users; --"}}, nil, false); err == nil {
		t.Fatal("bad hash accepted")
	}
	if _, err := a.SyncTenantUsers(ctx, marker, 10, []TenantUser{{Username: "te\\", PasswordHash: hashA}}, nil, false); err == nil {
		t.Fatal("backslash in a user name accepted")
	}
}
