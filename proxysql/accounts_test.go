package proxysql

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
)

// MariaDBAccounts against a real MariaDB (skipped with -short): hashes of
// mysql_native_password accounts come back, and ProxyUsers keeps only those.
func TestMariaDBAccountsOnRealServer(t *testing.T) {
	c := testenv.StartCluster(t, 1, testenv.Standalone())
	m := c.Master()
	db, err := sql.Open("mysql", m.Config().FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, q := range []string{
		"SET sql_log_bin=0",
		"CREATE USER 'tenant1'@'%' IDENTIFIED BY 'tenant-pw'",
		"CREATE USER 'tenant1'@'localhost' IDENTIFIED BY 'tenant-pw'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	src := MariaDBAccounts(testenv.RootUser, testenv.RootPassword, 5*time.Second)
	accounts, err := src(ctx, ipv6.HostPort{Host: "::1", Port: m.Port()})
	if err != nil {
		t.Fatal(err)
	}
	users, conflicts := ProxyUsers(accounts, 0)
	byName := map[string]string{}
	for _, u := range users {
		byName[u.Username] = u.Password
	}
	var hash string
	if err := db.QueryRowContext(ctx, "SELECT PASSWORD('tenant-pw')").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if byName["tenant1"] != hash {
		t.Errorf("tenant1 hash %q, want %q (users %v)", byName["tenant1"], hash, users)
	}
	if _, ok := byName[testenv.RootUser]; !ok {
		t.Errorf("root missing from %v", users)
	}
	if len(conflicts) > 0 {
		t.Errorf("conflicts %v", conflicts)
	}
}
