package proxysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
)

// AdminConfig locates and bounds the connection to one ProxySQL admin interface.
type AdminConfig struct {
	Addr     ipv6.HostPort // admin host and port (proxysql-servers entry, proxysql-admin-port)
	User     string        // proxysql-user
	Password string        // proxysql-password; never logged nor put in errors
	// ConnectTimeout bounds TCP connect and handshake; default 5 s (repman's value).
	ConnectTimeout time.Duration
	// CallTimeout bounds every single call, on top of the caller's context; default 5 s.
	CallTimeout time.Duration
}

// Admin is a client of one ProxySQL admin interface. It is safe for concurrent use; the
// statements of one call are sent on one connection, in order.
type Admin struct {
	addr    ipv6.HostPort
	db      *sql.DB
	timeout time.Duration
	conn    *countingConnector
}

// countingConnector counts the connections opened to the admin interface: the Router's
// one connection stays open while it is used every tick, so a new one means the first
// call, a network cut, or a ProxySQL that restarted (and may have lost its runtime).
type countingConnector struct {
	driver.Connector
	n atomic.Uint64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err == nil {
		c.n.Add(1)
	}
	return conn, err
}

// OpenAdmin prepares a client; it does not connect (the first call does).
func OpenAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Addr.Host == "" || cfg.Addr.Port < 1 || cfg.Addr.Port > 65535 {
		return nil, fmt.Errorf("proxysql admin: bad address %q", cfg.Addr)
	}
	if cfg.User == "" {
		return nil, fmt.Errorf("proxysql admin %s: empty user", cfg.Addr)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	mc := mysql.NewConfig()
	mc.User = cfg.User
	mc.Passwd = cfg.Password
	mc.Net = "tcp"
	mc.Addr = net.JoinHostPort(ipv6.Unbracket(cfg.Addr.Host), strconv.Itoa(cfg.Addr.Port))
	mc.Timeout = cfg.ConnectTimeout
	mc.ReadTimeout = cfg.CallTimeout
	mc.WriteTimeout = cfg.CallTimeout
	// The admin interface answers no prepared statement: placeholders are never used
	// (values are quoted by Quote), and no session variable is set at connect time.
	mc.InterpolateParams = false
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("proxysql admin %s: %w", cfg.Addr, err)
	}
	cc := &countingConnector{Connector: conn}
	db := sql.OpenDB(cc)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	return &Admin{addr: cfg.Addr, db: db, timeout: cfg.CallTimeout, conn: cc}, nil
}

// Connections counts the connections opened to the admin interface so far.
func (a *Admin) Connections() uint64 { return a.conn.n.Load() }

// Addr returns the admin interface's address.
func (a *Admin) Addr() ipv6.HostPort { return a.addr }

// Close releases the connection.
func (a *Admin) Close() error { return a.db.Close() }

func (a *Admin) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// Ping checks that the admin interface answers.
func (a *Admin) Ping(ctx context.Context) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	if err := a.db.PingContext(ctx); err != nil {
		return fmt.Errorf("proxysql %s: ping: %w", a.addr, err)
	}
	return nil
}

// exec runs one statement. what names it in errors; secret, when not empty, is scrubbed
// from the error (SQLite may echo a literal).
func (a *Admin) exec(ctx context.Context, what, stmt, secret string) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	if _, err := a.db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("proxysql %s: %s: %w", a.addr, what, redact(err, secret))
	}
	return nil
}

// query runs one SELECT and hands each row's columns, as strings, to fn.
func (a *Admin) query(ctx context.Context, what, stmt string, ncol int, fn func([]sql.NullString) error) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	rows, err := a.db.QueryContext(ctx, stmt)
	if err != nil {
		return fmt.Errorf("proxysql %s: %s: %w", a.addr, what, err)
	}
	defer rows.Close()
	vals := make([]sql.NullString, ncol)
	ptrs := make([]any, ncol)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("proxysql %s: %s: %w", a.addr, what, err)
		}
		if err := fn(vals); err != nil {
			return fmt.Errorf("proxysql %s: %s: %w", a.addr, what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("proxysql %s: %s: %w", a.addr, what, err)
	}
	return nil
}

const serverColumns = "hostgroup_id, hostname, port, status, weight, compression, max_connections, max_replication_lag, use_ssl, comment"

// Servers reads mysql_servers (the configuration, in memory).
func (a *Admin) Servers(ctx context.Context) ([]ServerRow, error) {
	return a.servers(ctx, "mysql_servers")
}

// RuntimeServers reads runtime_mysql_servers: what ProxySQL routes to now, including the
// moves of its monitor.
func (a *Admin) RuntimeServers(ctx context.Context) ([]ServerRow, error) {
	return a.servers(ctx, "runtime_mysql_servers")
}

func (a *Admin) servers(ctx context.Context, table string) ([]ServerRow, error) {
	var out []ServerRow
	err := a.query(ctx, "read "+table, "SELECT "+serverColumns+" FROM "+table, 10, func(v []sql.NullString) error {
		var r ServerRow
		var err error
		ints := []*int{&r.Hostgroup, nil, &r.Port, nil, &r.Weight, &r.Compression, &r.MaxConnections, &r.MaxReplicationLag}
		for i, p := range ints {
			if p != nil {
				if *p, err = atoi(v[i]); err != nil {
					return fmt.Errorf("column %d: %w", i+1, err)
				}
			}
		}
		r.Host = v[1].String
		r.Status = Status(strings.ToUpper(v[3].String))
		ssl, err := atoi(v[8])
		if err != nil {
			return fmt.Errorf("use_ssl: %w", err)
		}
		r.UseSSL = ssl != 0
		r.Comment = v[9].String
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortRows(out)
	return out, nil
}

func sortRows(rows []ServerRow) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Hostgroup != b.Hostgroup {
			return a.Hostgroup < b.Hostgroup
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Port < b.Port
	})
}

func atoi(v sql.NullString) (int, error) {
	if !v.Valid || v.String == "" {
		return 0, nil
	}
	return strconv.Atoi(strings.TrimSpace(v.String))
}

// ReplaceServer writes one row of mysql_servers (REPLACE: insert or overwrite the row with
// the same hostgroup, host and port). The host is sent unbracketed.
func (a *Admin) ReplaceServer(ctx context.Context, r ServerRow) error {
	stmt, err := replaceServerSQL(r)
	if err != nil {
		return fmt.Errorf("proxysql %s: write server %s: %w", a.addr, r, err)
	}
	return a.exec(ctx, "write server "+r.String(), stmt, "")
}

func replaceServerSQL(r ServerRow) (string, error) {
	if !r.Status.Valid() {
		return "", fmt.Errorf("status %q", r.Status)
	}
	host, err := Quote(ipv6.Unbracket(r.Host))
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	comment, err := Quote(r.Comment)
	if err != nil {
		return "", fmt.Errorf("comment: %w", err)
	}
	return fmt.Sprintf("REPLACE INTO mysql_servers (%s) VALUES (%d, %s, %d, '%s', %d, %d, %d, %d, %d, %s)",
		serverColumns, r.Hostgroup, host, r.Port, r.Status, r.Weight, r.Compression, r.MaxConnections,
		r.MaxReplicationLag, b2i(r.UseSSL), comment), nil
}

// DeleteServer removes a backend from one hostgroup of mysql_servers.
func (a *Admin) DeleteServer(ctx context.Context, hostgroup int, addr ipv6.HostPort) error {
	host, err := Quote(ipv6.Unbracket(addr.Host))
	if err != nil {
		return fmt.Errorf("proxysql %s: delete server %s: %w", a.addr, addr, err)
	}
	stmt := fmt.Sprintf("DELETE FROM mysql_servers WHERE hostgroup_id = %d AND hostname = %s AND port = %d", hostgroup, host, addr.Port)
	return a.exec(ctx, fmt.Sprintf("delete server hg=%d %s", hostgroup, addr), stmt, "")
}

// SetServerStatus sets the status of a backend's rows in the given hostgroups of mysql_servers.
func (a *Admin) SetServerStatus(ctx context.Context, addr ipv6.HostPort, hostgroups []int, status Status) error {
	if !status.Valid() || len(hostgroups) == 0 {
		return fmt.Errorf("proxysql %s: set status of %s: bad status %q or no hostgroup", a.addr, addr, status)
	}
	host, err := Quote(ipv6.Unbracket(addr.Host))
	if err != nil {
		return fmt.Errorf("proxysql %s: set status of %s: %w", a.addr, addr, err)
	}
	hgs := make([]string, len(hostgroups))
	for i, hg := range hostgroups {
		hgs[i] = strconv.Itoa(hg)
	}
	stmt := fmt.Sprintf("UPDATE mysql_servers SET status = '%s' WHERE hostname = %s AND port = %d AND hostgroup_id IN (%s)",
		status, host, addr.Port, strings.Join(hgs, ", "))
	return a.exec(ctx, fmt.Sprintf("set status of %s to %s", addr, status), stmt, "")
}

// ReplicationHostgroups reads mysql_replication_hostgroups.
func (a *Admin) ReplicationHostgroups(ctx context.Context) ([]ReplicationHostgroup, error) {
	return a.replicationHostgroups(ctx, "mysql_replication_hostgroups")
}

// RuntimeReplicationHostgroups reads runtime_mysql_replication_hostgroups: the pairs
// ProxySQL's monitor acts on now.
func (a *Admin) RuntimeReplicationHostgroups(ctx context.Context) ([]ReplicationHostgroup, error) {
	return a.replicationHostgroups(ctx, "runtime_mysql_replication_hostgroups")
}

func (a *Admin) replicationHostgroups(ctx context.Context, table string) ([]ReplicationHostgroup, error) {
	var out []ReplicationHostgroup
	err := a.query(ctx, "read "+table, "SELECT writer_hostgroup, reader_hostgroup, comment FROM "+table, 3, func(v []sql.NullString) error {
		w, err := atoi(v[0])
		if err != nil {
			return err
		}
		r, err := atoi(v[1])
		if err != nil {
			return err
		}
		out = append(out, ReplicationHostgroup{Writer: w, Reader: r, Comment: v[2].String})
		return nil
	})
	return out, err
}

// ReplaceReplicationHostgroup writes one row of mysql_replication_hostgroups.
func (a *Admin) ReplaceReplicationHostgroup(ctx context.Context, h ReplicationHostgroup) error {
	comment, err := Quote(h.Comment)
	if err != nil {
		return fmt.Errorf("proxysql %s: write replication hostgroups: comment: %w", a.addr, err)
	}
	stmt := fmt.Sprintf("REPLACE INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (%d, %d, %s)",
		h.Writer, h.Reader, comment)
	return a.exec(ctx, fmt.Sprintf("write replication hostgroups %d/%d", h.Writer, h.Reader), stmt, "")
}

// Users reads mysql_users.
func (a *Admin) Users(ctx context.Context) ([]User, error) {
	var out []User
	err := a.query(ctx, "read mysql_users", "SELECT username, password, default_hostgroup FROM mysql_users", 3, func(v []sql.NullString) error {
		hg, err := atoi(v[2])
		if err != nil {
			return err
		}
		out = append(out, User{Username: v[0].String, Password: v[1].String, DefaultHostgroup: hg})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out, nil
}

// ReplaceUser writes one row of mysql_users. The password never appears in an error.
func (a *Admin) ReplaceUser(ctx context.Context, u User) error {
	name, err := Quote(u.Username)
	if err != nil {
		return fmt.Errorf("proxysql %s: write user: username: %w", a.addr, err)
	}
	pass, err := Quote(u.Password)
	if err != nil {
		return fmt.Errorf("proxysql %s: write user %s: password not writable as a literal", a.addr, u.Username)
	}
	stmt := fmt.Sprintf("REPLACE INTO mysql_users (username, password, default_hostgroup) VALUES (%s, %s, %d)", name, pass, u.DefaultHostgroup)
	return a.exec(ctx, "write user "+u.Username, stmt, u.Password)
}

// LoadServersToRuntime activates mysql_servers and mysql_replication_hostgroups.
func (a *Admin) LoadServersToRuntime(ctx context.Context) error {
	return a.exec(ctx, "load servers", "LOAD MYSQL SERVERS TO RUNTIME", "")
}

// SaveServersToDisk persists mysql_servers and mysql_replication_hostgroups.
func (a *Admin) SaveServersToDisk(ctx context.Context) error {
	return a.exec(ctx, "save servers", "SAVE MYSQL SERVERS TO DISK", "")
}

// LoadUsersToRuntime activates mysql_users.
func (a *Admin) LoadUsersToRuntime(ctx context.Context) error {
	return a.exec(ctx, "load users", "LOAD MYSQL USERS TO RUNTIME", "")
}

// SaveUsersToDisk persists mysql_users.
func (a *Admin) SaveUsersToDisk(ctx context.Context) error {
	return a.exec(ctx, "save users", "SAVE MYSQL USERS TO DISK", "")
}

// Quote returns s as a literal of ProxySQL's admin SQL, which is SQLite's: single quotes,
// a quote doubled, no backslash escapes (a backslash is an ordinary character there but
// would be one in MySQL's dialect, so values holding one are refused rather than guessed
// at), and no control characters.
func Quote(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("control character at byte %d", i)
		}
		if c == '\\' {
			return "", fmt.Errorf("backslash at byte %d", i)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// redact rewrites err so that secret does not appear in its message.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), secret, "<redacted>")
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return &mysql.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: strings.ReplaceAll(me.Message, secret, "<redacted>")}
	}
	return errors.New(msg)
}
