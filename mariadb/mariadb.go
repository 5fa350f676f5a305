// Package mariadb speaks SQL to one MariaDB server: it probes its state (version, GTID
// positions, replication connections, semi-sync, connected replicas) and runs the actions
// the failover needs (read_only, CHANGE MASTER, START/STOP/RESET SLAVE, MASTER_GTID_WAIT,
// KILL, SHUTDOWN). Every call takes a context and the connection has its own timeouts, so
// a frozen server costs the caller at most its deadline.
//
// Statements that cannot take placeholders (CHANGE MASTER, STOP SLAVE 'name', KILL) are
// built from validated values and quoted literals, never from raw strings. Passwords are
// kept out of DSNs (the driver config is built as a struct), logs and error messages.
//
// Privileges the monitoring user needs: PROCESS (other sessions in the processlist),
// REPLICA MONITOR / SLAVE MONITOR (SHOW ALL SLAVES STATUS), BINLOG MONITOR; the actions need
// SUPER or the fine-grained 10.5+ privileges (READ_ONLY ADMIN, REPLICATION SLAVE ADMIN,
// CONNECTION ADMIN, SHUTDOWN).
package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
)

// Options tunes the connection pool to one server. Zero values take the defaults.
type Options struct {
	ConnectTimeout time.Duration // TCP connect + handshake; default 2s
	ReadTimeout    time.Duration // per network read; default 10s (contexts are usually shorter)
	WriteTimeout   time.Duration // per network write; default 10s
	// TLSConfig is a go-sql-driver TLS name: "" (plain), "true", "skip-verify",
	// "preferred", or a name registered with mysql.RegisterTLSConfig.
	TLSConfig    string
	MaxOpenConns int // default 4: a probe, an action, and the fence and watch held on a master
	// ConnMaxLifetime recycles pooled connections; default 0 (forever).
	ConnMaxLifetime time.Duration
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxOpenConns <= 0 {
		// The probe and the plans' statements, plus two connections the monitor holds on a
		// master: the fence and the watch.
		o.MaxOpenConns = 4
	}
	return o
}

// Server is a small connection pool to one MariaDB server. It is safe for concurrent use.
type Server struct {
	addr ipv6.HostPort
	user string
	db   *sql.DB

	mu             sync.Mutex
	version        *Version // learnt from Probe or on demand
	noSemiSyncVars bool     // server lacks @@rpl_semi_sync_* (MariaDB < 10.3 without plugin)
	noSlaveHosts   bool     // SHOW SLAVE HOSTS denied: count dump threads in the processlist
}

// Open prepares a pool to addr as user. It does not connect: the first call does, with
// the call's context. The password stays inside the driver configuration.
func Open(addr ipv6.HostPort, user, password string, opt Options) (*Server, error) {
	if addr.Host == "" {
		return nil, errors.New("mariadb open: empty host")
	}
	if addr.Port < 1 || addr.Port > 65535 {
		return nil, fmt.Errorf("mariadb open %s: port %d out of range", addr, addr.Port)
	}
	if user == "" {
		return nil, fmt.Errorf("mariadb open %s: empty user", addr)
	}
	opt = opt.withDefaults()
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(ipv6.Unbracket(addr.Host), fmt.Sprint(addr.Port))
	cfg.Timeout = opt.ConnectTimeout
	cfg.ReadTimeout = opt.ReadTimeout
	cfg.WriteTimeout = opt.WriteTimeout
	cfg.TLSConfig = opt.TLSConfig
	// Client-side interpolation of ? placeholders: one round trip instead of three
	// (prepare, execute, close); the driver escapes according to the session's
	// NO_BACKSLASH_ESCAPES status.
	cfg.InterpolateParams = true
	// Statements we build ourselves escape backslashes: make sure the session agrees.
	cfg.Params = map[string]string{"sql_mode": "(SELECT REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', ''))"}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mariadb open %s: %w", addr, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(opt.MaxOpenConns)
	db.SetMaxIdleConns(opt.MaxOpenConns)
	db.SetConnMaxLifetime(opt.ConnMaxLifetime)
	return &Server{addr: addr, user: user, db: db}, nil
}

// Addr returns the server's address.
func (s *Server) Addr() ipv6.HostPort { return s.addr }

// String names the server (address and user, never the password).
func (s *Server) String() string { return s.user + "@" + s.addr.String() }

// DB exposes the pool for packages that run their own statements (users, tenants). They
// must keep to the same rules: contexts, placeholders or quoted literals.
func (s *Server) DB() *sql.DB { return s.db }

// Close closes the pool.
func (s *Server) Close() error { return s.db.Close() }

// Ping checks that the server answers.
func (s *Server) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.addr, err)
	}
	return nil
}

// IsAccessDenied reports a rejected login (MariaDB error 1045), which repman reports as
// ErrorAuth rather than a failure.
func IsAccessDenied(err error) bool { return errNumber(err) == 1045 }

// IsTimeout reports whether err is a deadline or network timeout (server frozen or
// unreachable, rather than refusing).
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// quoteString returns s as a MariaDB string literal: quote doubled, backslash and NUL
// escaped (sessions run without NO_BACKSLASH_ESCAPES, see Open).
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// MaxChannelLength is MariaDB's limit on a replication connection name.
const MaxChannelLength = 64

// ValidateChannel checks a multi-source connection name ("" is the default connection).
func ValidateChannel(name string) error {
	if len(name) > MaxChannelLength {
		return fmt.Errorf("replication connection name %.20q...: longer than %d", name, MaxChannelLength)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("replication connection name %q: control character", name)
		}
	}
	return nil
}

// channelClause renders the optional connection name of CHANGE MASTER / START SLAVE / ...:
// "" for the default connection, else a quoted literal with a leading space.
func channelClause(name string) (string, error) {
	if err := ValidateChannel(name); err != nil {
		return "", err
	}
	if name == "" {
		return "", nil
	}
	return " " + quoteString(name), nil
}

// redactError rewrites err so that no occurrence of secret (or its quoted form) remains in
// its message; MariaDB echoes statement text in syntax errors. The error number survives.
func redactError(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	msg := err.Error()
	quoted := quoteString(secret)
	if !strings.Contains(msg, secret) && !strings.Contains(msg, quoted[1:len(quoted)-1]) {
		return err
	}
	clean := strings.ReplaceAll(msg, quoted[1:len(quoted)-1], "<redacted>")
	clean = strings.ReplaceAll(clean, secret, "<redacted>")
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return &mysql.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: clean}
	}
	return errors.New(clean)
}
