package proxysql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql/proxysqltest"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"db1", "'db1'", ""},
		{"2001:db8::1", "'2001:db8::1'", ""},
		{"o'brien", "'o''brien'", ""},
		{"''", "''''''", ""},
		{"é", "'é'", ""},
		{"a\\b", "", "backslash"},
		{"a\nb", "", "control"},
		{"a\x00b", "", "control"},
	} {
		got, err := Quote(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Quote(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Quote(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func openAdmin(t *testing.T, d *proxysqltest.AdminDouble) *Admin {
	t.Helper()
	a, err := OpenAdmin(AdminConfig{Addr: d.Addr(), User: "admin", Password: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// The admin client against the double listening on IPv6 loopback: the admin address is
// dialled with brackets, backend hosts are written without.
func TestAdminOverIPv6AgainstDouble(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{Host: "::1"})
	a := openAdmin(t, d)
	c := ctx(t)
	row := ServerRow{Hostgroup: 1, Host: "[2001:db8::7]", Port: 2099, Status: StatusOnline, Weight: 5, MaxConnections: 10, MaxReplicationLag: 3, UseSSL: true, Comment: "it's"}
	if err := a.ReplaceServer(c, row); err != nil {
		t.Fatal(err)
	}
	if err := a.SetServerStatus(c, ipv6.HostPort{Host: "2001:db8::7", Port: 2099}, []int{0, 1}, StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	if err := a.LoadServersToRuntime(c); err != nil {
		t.Fatal(err)
	}
	got, err := a.RuntimeServers(c)
	if err != nil {
		t.Fatal(err)
	}
	want := row
	want.Host, want.Status = "2001:db8::7", StatusOfflineSoft
	if len(got) != 1 || got[0] != want {
		t.Fatalf("runtime %+v, want %+v", got, want)
	}
	if err := a.DeleteServer(c, 1, ipv6.HostPort{Host: "2001:db8::7", Port: 2099}); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveServersToDisk(c); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		"REPLACE INTO mysql_servers (" + serverColumns + ") VALUES (1, '2001:db8::7', 2099, 'ONLINE', 5, 0, 10, 3, 1, 'it''s')",
		"UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostname = '2001:db8::7' AND port = 2099 AND hostgroup_id IN (0, 1)",
		loadServers,
		selRuntime,
		"DELETE FROM mysql_servers WHERE hostgroup_id = 1 AND hostname = '2001:db8::7' AND port = 2099",
		saveServers,
	})
	same(t, "disk", d.Dump("disk.mysql_servers", "hostname"), nil)
	same(t, "runtime keeps the loaded row", d.Dump("runtime_mysql_servers", "hostname", "status"), []string{"2001:db8::7 OFFLINE_SOFT"})
}

func TestAdminUsersAndHostgroups(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	a := openAdmin(t, d)
	c := ctx(t)
	u := User{Username: "app", Password: "*0123456789ABCDEF0123456789ABCDEF01234567", DefaultHostgroup: 0}
	if err := a.ReplaceUser(c, u); err != nil {
		t.Fatal(err)
	}
	if err := a.ReplaceReplicationHostgroup(c, ReplicationHostgroup{Writer: 10, Reader: 11, Comment: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(context.Context) error{a.LoadUsersToRuntime, a.SaveUsersToDisk, a.LoadServersToRuntime} {
		if err := f(c); err != nil {
			t.Fatal(err)
		}
	}
	users, err := a.Users(c)
	if err != nil || len(users) != 1 || users[0] != u {
		t.Fatalf("users %v, %v", users, err)
	}
	hgs, err := a.RuntimeReplicationHostgroups(c)
	if err != nil || len(hgs) != 1 || hgs[0] != (ReplicationHostgroup{10, 11, "c"}) {
		t.Fatalf("hostgroups %v, %v", hgs, err)
	}
	// ProxySQL shows a frontend-and-backend user as two runtime rows.
	same(t, "runtime users", d.Dump("runtime_mysql_users", "username", "default_hostgroup", "active", "frontend", "backend"), []string{"app 0 1 1 0", "app 0 1 0 1"})
	same(t, "disk users", d.Dump("disk.mysql_users", "username"), []string{"app"})
	if s := u.String() + (User{}).GoString(); strings.Contains(s, u.Password) {
		t.Fatalf("String shows the password: %s", s)
	}
}

// Errors name the call but never carry a password hash, even when ProxySQL echoes it.
func TestAdminErrorsHideSecrets(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	a := openAdmin(t, d)
	hash := "*AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	d.FailNext("REPLACE INTO mysql_users", errors.New("near "+hash+": syntax error"))
	err := a.ReplaceUser(ctx(t), User{Username: "app", Password: hash})
	if err == nil || strings.Contains(err.Error(), hash) || !strings.Contains(err.Error(), "write user app") {
		t.Fatalf("error %v", err)
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("error number lost: %v", err)
	}
}

// The double behaves as ProxySQL's admin where the client relies on it: no prepared
// statements, unknown statements are errors naming them, runtime tables are not written.
func TestAdminDoubleRefusals(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "admin", "admin", "tcp", d.Addr().String()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	c := ctx(t)
	if _, err := db.ExecContext(c, "DELETE FROM mysql_servers WHERE hostgroup_id = ?", 1); err == nil || !strings.Contains(err.Error(), "Command not supported") {
		t.Errorf("prepared statement: %v", err)
	}
	if _, err := db.ExecContext(c, "PROXYSQL FLUSH LOGS"); err == nil || !strings.Contains(err.Error(), "PROXYSQL FLUSH LOGS") {
		t.Errorf("unknown statement: %v", err)
	}
	if _, err := db.ExecContext(c, "DELETE FROM runtime_mysql_servers"); err == nil {
		t.Error("runtime table written")
	}
	if _, err := db.ExecContext(c, "INSERT INTO mysql_servers (hostgroup_id, hostname, status) VALUES (1, 'x', 'UP')"); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Errorf("bad status: %v", err)
	}
	if _, err := db.ExecContext(c, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'x')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(c, "INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (1, 'x')"); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("duplicate key: %v", err)
	}
	same(t, "defaults", d.Dump("mysql_servers", "hostgroup_id", "hostname", "port", "status", "weight", "max_connections"), []string{"1 x 3306 ONLINE 1 1000"})
}
