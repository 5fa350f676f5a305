package mariadb

import (
	"strings"
	"testing"
)

func TestRedactSQLHidesSecrets(t *testing.T) {
	for _, c := range []struct{ in, want, secret string }{
		{"CREATE USER 'app'@'%' IDENTIFIED BY 'S3cret!'", "CREATE USER '********'@'********' IDENTIFIED BY '********'", "S3cret"},
		{"alter user app identified by \"p'w\"", "alter user app identified by \"********\"", "p'w"},
		{"SET PASSWORD FOR 'a'@'h' = PASSWORD('hunter2')", "SET PASSWORD FOR '********'@'********' = PASSWORD('********')", "hunter2"},
		{"SET PASSWORD = 'hash*ABC'", "SET PASSWORD = '********'", "hash*ABC"},
		{"CHANGE MASTER TO MASTER_HOST='db1', MASTER_PASSWORD = 'replpw', MASTER_USE_GTID=slave_pos",
			"CHANGE MASTER TO MASTER_HOST='********', MASTER_PASSWORD = '********', MASTER_USE_GTID=slave_pos", "replpw"},
		{"CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('edpw') OR unix_socket", "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('********') OR unix_socket", "edpw"},
		{"CREATE USER u IDENTIFIED VIA mysql_native_password USING '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
			"CREATE USER u IDENTIFIED VIA mysql_native_password USING '********'", "94BDCE"},
		{"GRANT ALL ON *.* TO x IDENTIFIED WITH pam AS 'svc'", "GRANT ALL ON *.* TO x IDENTIFIED WITH pam AS '********'", "svc"},
		// Escapes: a backslash-escaped or doubled quote does not end the literal.
		{`CREATE USER u IDENTIFIED BY 'a\'b''c' -- x`, `CREATE USER u IDENTIFIED BY '********' -- x`, `b''c`},
		// Text cut by the server inside the literal: hidden to the end.
		{"CREATE USER u IDENTIFIED BY 'very-long-secr", "CREATE USER u IDENTIFIED BY '********", "very-long"},
		{"SELECT AES_ENCRYPT(col, 'k3y') FROM t", "SELECT AES_ENCRYPT(col, '********') FROM t", "k3y"},
		// Backquoted identifiers keep their content, even a quote inside.
		{"CREATE USER `o'k` IDENTIFIED BY 'pw1'", "CREATE USER `o'k` IDENTIFIED BY '********'", "pw1"},
	} {
		got := RedactSQL(c.in)
		if got != c.want {
			t.Errorf("RedactSQL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if strings.Contains(got, c.secret) {
			t.Errorf("RedactSQL(%q) leaks %q: %q", c.in, c.secret, got)
		}
	}
}

func TestRedactSQLKeepsOrdinaryStatements(t *testing.T) {
	for _, q := range []string{"", "SELECT * FROM t WHERE name = 'bob'", "INSERT INTO t VALUES ('a', \"b\")", "SHOW ALL SLAVES STATUS"} {
		if got := RedactSQL(q); got != q {
			t.Errorf("RedactSQL(%q) = %q, want it unchanged", q, got)
		}
	}
}

func TestRedactVariable(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
	}{
		{"wsrep_sst_auth", "sst:pw", Redacted},
		{"hashicorp_key_management_token", "hvs.x", Redacted},
		{"file_key_management_filekey", "FILE:/k", Redacted},
		{"server_audit_ROOT_PASSWORD", "x", Redacted}, // case does not matter
		{"some_plugin_secret", "", ""},                // not set stays visible as such
		{"key_buffer_size", "134217728", "134217728"}, // "key" alone is no secret
		{"ssl_key", "/etc/mysql/key.pem", "/etc/mysql/key.pem"},
		{"max_connections", "151", "151"},
	} {
		if got := RedactVariable(c.name, c.value); got != c.want {
			t.Errorf("RedactVariable(%q, %q) = %q, want %q", c.name, c.value, got, c.want)
		}
	}
}
