package mariadb

import (
	"strings"
	"testing"

	"replication-manager-pro/internal/testenv"
)

func TestTenantStatements(t *testing.T) {
	stmts, err := TenantStatements(TenantAccount{Database: "db_a_b", User: "ab", PasswordHash: NativePasswordHash("x"), Charset: "utf8mb4", Collation: "utf8mb4_bin", RequireSSL: true})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(stmts, "\n")
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS `db_a_b` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE USER IF NOT EXISTS 'ab'@'%' IDENTIFIED BY PASSWORD '*",
		"' REQUIRE SSL",
		"GRANT ALL PRIVILEGES ON `db\\_a\\_b`.* TO 'ab'@'%'",
		"GRANT ALL PRIVILEGES ON `db\\_a\\_b`.* TO 'ab'@'localhost'",
		"GRANT ALL PRIVILEGES ON `db\\_a\\_b`.* TO 'ab'@'::'",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	for _, bad := range []TenantAccount{
		{Database: "db`x", User: "u", PasswordHash: NativePasswordHash("x")},
		{Database: "db_x", User: "u'", PasswordHash: NativePasswordHash("x")},
		{Database: "db_x", User: "u", PasswordHash: "x' OR '1"},
		{Database: "db_x", User: "u", PasswordHash: NativePasswordHash("x"), Charset: "utf8; DROP"},
		{Database: strings.Repeat("d", 65), User: "u", PasswordHash: NativePasswordHash("x")},
		{Database: "DB_X", User: "u", PasswordHash: NativePasswordHash("x")},
	} {
		if _, err := TenantStatements(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// The hash computed here is the one MariaDB's PASSWORD() gives, for passwords with quotes,
// backslashes and non-ASCII characters.
func TestNativePasswordHashMatchesMariaDB(t *testing.T) {
	c := testenv.StartCluster(t, 1)
	s := c.Master()
	for _, pw := range []string{"", "x", `q'uo"te\back\\slash`, "émoji 🔑", "x'); DROP USER root; --"} {
		if got := s.QueryString(t, "SELECT PASSWORD(?)", pw); got != NativePasswordHash(pw) {
			t.Errorf("%q: MariaDB %s, ours %s", pw, got, NativePasswordHash(pw))
		}
	}
}
