package proxysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql/proxysqltest"
)

const (
	hashApp  = "*0123456789ABCDEF0123456789ABCDEF01234567"
	hashApp2 = "*89ABCDEF0123456789ABCDEF0123456789ABCDEF"
	hashRoot = "*FEDCBA9876543210FEDCBA9876543210FEDCBA98"
)

func TestProxyUsers(t *testing.T) {
	users, conflicts := ProxyUsers([]Account{
		{"app", hashApp}, {"app", hashApp}, // app@'%' and app@localhost, same password
		{"root", hashRoot},
		{"split", hashApp}, {"split", hashRoot}, // two passwords for one name
		{"mariadb.sys", ""}, {"", hashApp}, {"sock", "invalid"}, {"ed", "somehash"},
	}, 0)
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	same(t, "users", names, []string{"app", "root"})
	same(t, "conflicts", conflicts, []string{"split"})
}

func TestRouterSyncsUsers(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	accounts := []Account{{"app", hashApp}, {"root", hashRoot}}
	var calls []ipv6.HostPort
	src := func(_ context.Context, m ipv6.HostPort) ([]Account, error) {
		calls = append(calls, m)
		return accounts, nil
	}
	r := newRouter(t, d, func(o *Options) {
		o.Manage, o.BootstrapHostgroups = false, false
		o.SyncUsers, o.Accounts = true, src
		o.UserSyncInterval = time.Hour
	})
	clock := time.Unix(1000, 0)
	r.now = func() time.Time { return clock }
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		"SELECT username, password, default_hostgroup FROM mysql_users",
		"REPLACE INTO mysql_users (username, password, default_hostgroup) VALUES ('app', '" + hashApp + "', 0)",
		"REPLACE INTO mysql_users (username, password, default_hostgroup) VALUES ('root', '" + hashRoot + "', 0)",
		"LOAD MYSQL USERS TO RUNTIME",
		"SAVE MYSQL USERS TO DISK",
	})
	same(t, "runtime users", d.Dump("runtime_mysql_users", "username", "default_hostgroup", "frontend"), []string{"app 0 1", "app 0 0", "root 0 1", "root 0 0"})

	// Not due yet, same master: the tick asks nothing.
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), nil)

	// Due, with app's password rotated on the master: only app is rewritten.
	clock = clock.Add(time.Hour)
	accounts = []Account{{"app", hashApp2}, {"root", hashRoot}}
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "writes", d.Writes(), []string{
		"REPLACE INTO mysql_users (username, password, default_hostgroup) VALUES ('app', '" + hashApp2 + "', 0)",
		"LOAD MYSQL USERS TO RUNTIME",
		"SAVE MYSQL USERS TO DISK",
	})
	if len(calls) != 2 || calls[0] != addrA {
		t.Fatalf("account reads %v", calls)
	}

	// A source error is reported without touching ProxySQL.
	d.ResetStatements()
	clock = clock.Add(time.Hour)
	r.opt.Accounts = func(context.Context, ipv6.HostPort) ([]Account, error) { return nil, errors.New("master down") }
	if err := r.Reconcile(ctx(t), snapA()); err == nil || !strings.Contains(err.Error(), "user sync: master down") {
		t.Fatalf("error %v", err)
	}
	same(t, "statements", d.Statements(), nil)
}
