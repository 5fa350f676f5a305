package mariadb

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Tenant databases (package tenant decides; this file holds their SQL). Everything here runs
// on the master with the binary log on, so that every replica applies the same statements
// under the same GTIDs: tenants' databases, accounts and the tracking rows exist on every
// node, and a failover or switchover keeps them.
//
// Identifiers never come from raw input: names are checked against the tenant alphabet
// ([a-z0-9_]) before they are quoted, and passwords never reach the server: accounts are
// created from their mysql_native_password hash (IDENTIFIED BY PASSWORD '*...'), so no
// clear password is in a statement, the processlist, the binary log or an error message.

// TenantSchema is the product's own schema, which holds the tracking table.
const TenantSchema = "replication_manager_schema"

// TenantTable tracks the tenant databases the manager created, one row per reference.
const TenantTable = "tenant_databases"

// TenantHosts are the hosts of each tenant account, as SlapOS creates them: any host, the
// local socket and '::'.
var TenantHosts = []string{"%", "localhost", "::"}

// Limits of MariaDB names used by tenants.
const (
	MaxDatabaseName = 64 // a schema name
	MaxUserName     = 80 // a user name (MariaDB; MySQL allows 32)
)

var (
	tenantName = regexp.MustCompile(`^[a-z0-9_]+$`)
	charsetRe  = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	nativeHash = regexp.MustCompile(`^\*[0-9A-F]{40}$`)
)

// TenantState is a tracking row's state.
type TenantState string

const (
	// TenantCreating: the row is written, the database and accounts may not all exist yet;
	// creating again completes them.
	TenantCreating TenantState = "creating"
	// TenantReady: database and accounts exist.
	TenantReady TenantState = "ready"
	// TenantDropping: removal started; removing again completes it.
	TenantDropping TenantState = "dropping"
)

// TenantRow is one tracking row.
type TenantRow struct {
	Reference  string
	Database   string
	User       string
	Charset    string
	Collation  string
	RequireSSL bool
	State      TenantState
	// Secret is the tenant's password sealed by package tenant (never the clear text).
	Secret  []byte
	Created time.Time
	Updated time.Time
}

// TenantAccount is what CreateTenant makes: a database and one account per TenantHosts
// entry with ALL PRIVILEGES on that database only.
type TenantAccount struct {
	Database     string
	User         string
	PasswordHash string // mysql_native_password hash: NativePasswordHash
	Charset      string // "" leaves the server's default
	Collation    string // "" leaves the charset's default
	RequireSSL   bool
}

// NativePasswordHash is MariaDB's mysql_native_password hash of a password:
// "*" + upper-case hex of SHA1(SHA1(password)), as PASSWORD() returns it. ProxySQL accepts
// it in mysql_users. The empty password hashes to "" (no password), as in MariaDB.
func NativePasswordHash(password string) string {
	if password == "" {
		return ""
	}
	a := sha1.Sum([]byte(password))
	b := sha1.Sum(a[:])
	return "*" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// ValidTenantName checks a database or user name of a tenant: 1 to max characters of
// [a-z0-9_].
func ValidTenantName(kind, name string, max int) error {
	if name == "" || len(name) > max {
		return fmt.Errorf("%s name %q: want 1 to %d characters", kind, name, max)
	}
	if !tenantName.MatchString(name) {
		return fmt.Errorf("%s name %q: want lower-case letters, digits and '_'", kind, name)
	}
	return nil
}

// quoteIdent returns a name as a back-quoted identifier (back quotes doubled).
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// grantPattern returns a database name as the pattern of a database-level GRANT: '_' and
// '%' are wildcards there, so they are escaped. Without this, a grant on db_a_b would also
// open db_axb (another tenant's database) to its user.
func grantPattern(db string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return quoteIdent(r.Replace(db))
}

func account(user, host string) string { return quoteString(user) + "@" + quoteString(host) }

func (a TenantAccount) check() error {
	if err := ValidTenantName("database", a.Database, MaxDatabaseName); err != nil {
		return err
	}
	if err := ValidTenantName("user", a.User, MaxUserName); err != nil {
		return err
	}
	if !nativeHash.MatchString(a.PasswordHash) {
		return errors.New("password hash: not a mysql_native_password hash")
	}
	if a.Charset != "" && !charsetRe.MatchString(a.Charset) {
		return fmt.Errorf("character set %q: want letters, digits and '_'", a.Charset)
	}
	if a.Collation != "" && !charsetRe.MatchString(a.Collation) {
		return fmt.Errorf("collation %q: want letters, digits and '_'", a.Collation)
	}
	return nil
}

// TenantStatements returns the statements CreateTenant runs, in order. They are idempotent
// (IF NOT EXISTS, GRANT): running them again after an interruption completes the tenant.
func TenantStatements(a TenantAccount) ([]string, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	create := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(a.Database)
	if a.Charset != "" {
		create += " CHARACTER SET " + a.Charset
	}
	if a.Collation != "" {
		create += " COLLATE " + a.Collation
	}
	out := []string{create}
	require := " REQUIRE NONE"
	if a.RequireSSL {
		require = " REQUIRE SSL"
	}
	for _, h := range TenantHosts {
		out = append(out,
			"CREATE USER IF NOT EXISTS "+account(a.User, h)+" IDENTIFIED BY PASSWORD "+quoteString(a.PasswordHash)+require,
			"GRANT ALL PRIVILEGES ON "+grantPattern(a.Database)+".* TO "+account(a.User, h))
	}
	return out, nil
}

// CreateTenant creates a tenant's database and accounts on this server (the master), with
// the binary log on. An account that exists keeps its password: it is set at creation only.
func (s *Server) CreateTenant(ctx context.Context, a TenantAccount) error {
	stmts, err := TenantStatements(a)
	if err != nil {
		return fmt.Errorf("create tenant on %s: %w", s.addr, err)
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create tenant %s on %s: %w", a.Database, s.addr, redactError(err, a.PasswordHash))
		}
	}
	return nil
}

// SetTenantRequireSSL sets REQUIRE SSL (or REQUIRE NONE) on every account of a tenant user
// that exists.
func (s *Server) SetTenantRequireSSL(ctx context.Context, user string, on bool) error {
	if err := ValidTenantName("user", user, MaxUserName); err != nil {
		return err
	}
	req := "NONE"
	if on {
		req = "SSL"
	}
	for _, h := range TenantHosts {
		if err := s.exec(ctx, "require "+req+" for "+user, "ALTER USER IF EXISTS "+account(user, h)+" REQUIRE "+req); err != nil {
			return err
		}
	}
	return nil
}

// DropTenant drops a tenant's accounts (which revokes their privileges) and its database,
// each only if it exists.
func (s *Server) DropTenant(ctx context.Context, database, user string) error {
	if err := ValidTenantName("database", database, MaxDatabaseName); err != nil {
		return fmt.Errorf("drop tenant on %s: %w", s.addr, err)
	}
	if err := ValidTenantName("user", user, MaxUserName); err != nil {
		return fmt.Errorf("drop tenant on %s: %w", s.addr, err)
	}
	for _, h := range TenantHosts {
		if err := s.exec(ctx, "drop user "+user, "DROP USER IF EXISTS "+account(user, h)); err != nil {
			return err
		}
	}
	return s.exec(ctx, "drop database "+database, "DROP DATABASE IF EXISTS "+quoteIdent(database))
}

// DatabaseExists tells whether a schema of that name exists.
func (s *Server) DatabaseExists(ctx context.Context, name string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		return false, fmt.Errorf("schema %s on %s: %w", name, s.addr, err)
	}
	return n > 0, nil
}

// Databases returns the names of every schema.
func (s *Server) Databases(ctx context.Context) (map[string]bool, error) {
	return s.nameSet(ctx, "schemas", "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
}

// AccountUsers returns the user names of every account.
func (s *Server) AccountUsers(ctx context.Context) (map[string]bool, error) {
	return s.nameSet(ctx, "accounts", "SELECT DISTINCT User FROM mysql.user")
}

func (s *Server) nameSet(ctx context.Context, what, q string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
		}
		out[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
	}
	return out, nil
}

// AccountHosts returns the hosts of the accounts named user (none: the user does not exist).
func (s *Server) AccountHosts(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", user)
	if err != nil {
		return nil, fmt.Errorf("accounts %s on %s: %w", user, s.addr, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("accounts %s on %s: %w", user, s.addr, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

const tenantTableDDL = "CREATE TABLE IF NOT EXISTS " + TenantSchema + "." + TenantTable + ` (
  reference VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  db_name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_name VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  charset_name VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT '',
  collation_name VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT '',
  require_ssl TINYINT(1) NOT NULL DEFAULT 1,
  state VARCHAR(16) CHARACTER SET ascii NOT NULL,
  secret VARBINARY(1024) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (reference),
  UNIQUE KEY db_name (db_name),
  UNIQUE KEY user_name (user_name)
) ENGINE=InnoDB`

// EnsureTenantTable creates the product's schema and the tracking table when missing. It
// writes nothing when they exist (no binary log event: a repeated call changes nothing).
func (s *Server) EnsureTenantTable(ctx context.Context) error {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		TenantSchema, TenantTable).Scan(&n)
	if err != nil {
		return fmt.Errorf("tenant table on %s: %w", s.addr, err)
	}
	if n > 0 {
		return nil
	}
	if err := s.exec(ctx, "create schema "+TenantSchema, "CREATE DATABASE IF NOT EXISTS "+TenantSchema); err != nil {
		return err
	}
	return s.exec(ctx, "create tenant table", tenantTableDDL)
}

// TenantRows reads the tracking rows, sorted by reference. A missing table reads as none.
func (s *Server) TenantRows(ctx context.Context) ([]TenantRow, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT reference, db_name, user_name, charset_name, collation_name, require_ssl, state, secret, "+
		"UNIX_TIMESTAMP(created_at), UNIX_TIMESTAMP(updated_at) FROM "+TenantSchema+"."+TenantTable+" ORDER BY reference")
	if err != nil {
		if n := errNumber(err); n == 1146 || n == 1049 { // no such table / database
			return nil, nil
		}
		return nil, fmt.Errorf("tenant rows on %s: %w", s.addr, err)
	}
	defer rows.Close()
	var out []TenantRow
	for rows.Next() {
		var (
			r              TenantRow
			state          string
			created, updat float64
		)
		if err := rows.Scan(&r.Reference, &r.Database, &r.User, &r.Charset, &r.Collation, &r.RequireSSL, &state, &r.Secret, &created, &updat); err != nil {
			return nil, fmt.Errorf("tenant rows on %s: %w", s.addr, err)
		}
		r.State = TenantState(state)
		r.Created, r.Updated = unixTime(created), unixTime(updat)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tenant rows on %s: %w", s.addr, err)
	}
	return out, nil
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
}

// InsertTenantRow writes a new tracking row. A row of that reference, database or user name
// already there is an error (ErrTenantRowExists).
func (s *Server) InsertTenantRow(ctx context.Context, r TenantRow) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+TenantSchema+"."+TenantTable+
		" (reference, db_name, user_name, charset_name, collation_name, require_ssl, state, secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		r.Reference, r.Database, r.User, r.Charset, r.Collation, r.RequireSSL, string(r.State), r.Secret)
	if errNumber(err) == 1062 {
		return fmt.Errorf("tenant row %s on %s: %w", r.Reference, s.addr, ErrTenantRowExists)
	}
	if err != nil {
		return fmt.Errorf("tenant row %s on %s: %w", r.Reference, s.addr, err)
	}
	return nil
}

// ErrTenantRowExists: a tracking row holds that reference, database or user name already.
var ErrTenantRowExists = errors.New("a tenant row holds that reference or name already")

// UpdateTenantRow sets a tracking row's state and require_ssl.
func (s *Server) UpdateTenantRow(ctx context.Context, reference string, state TenantState, requireSSL bool) error {
	return s.exec(ctx, "update tenant row "+reference,
		"UPDATE "+TenantSchema+"."+TenantTable+" SET state = ?, require_ssl = ? WHERE reference = ?", string(state), requireSSL, reference)
}

// DeleteTenantRow removes a tracking row.
func (s *Server) DeleteTenantRow(ctx context.Context, reference string) error {
	return s.exec(ctx, "delete tenant row "+reference, "DELETE FROM "+TenantSchema+"."+TenantTable+" WHERE reference = ?", reference)
}

// DatabaseCharset returns a schema's default character set and collation.
func (s *Server) DatabaseCharset(ctx context.Context, name string) (charset, collation string, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).
		Scan(&charset, &collation)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("schema %s on %s: does not exist", name, s.addr)
	}
	if err != nil {
		return "", "", fmt.Errorf("schema %s on %s: %w", name, s.addr, err)
	}
	return charset, collation, nil
}
