package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/gtid"
)

func (s *Server) exec(ctx context.Context, what, query string, args ...any) error {
	if _, err := s.db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("%s on %s: %w", what, s.addr, err)
	}
	return nil
}

// Version returns the server's version, from the last probe or asked once.
func (s *Server) Version(ctx context.Context) (Version, error) {
	s.mu.Lock()
	v := s.version
	s.mu.Unlock()
	if v != nil {
		return *v, nil
	}
	var raw string
	if err := s.db.QueryRowContext(ctx, "SELECT @@version").Scan(&raw); err != nil {
		return Version{}, fmt.Errorf("version of %s: %w", s.addr, err)
	}
	pv := ParseVersion(raw)
	s.mu.Lock()
	s.version = &pv
	s.mu.Unlock()
	return pv, nil
}

// SetReadOnly sets the global read_only (and super_read_only on MySQL, where it exists).
func (s *Server) SetReadOnly(ctx context.Context, on bool) error {
	val := "OFF"
	if on {
		val = "ON"
	}
	v, err := s.Version(ctx)
	if err != nil {
		return fmt.Errorf("set read_only=%s: %w", val, err)
	}
	if !v.MariaDB && !on {
		if err := s.exec(ctx, "set super_read_only=OFF", "SET GLOBAL super_read_only=OFF"); err != nil {
			return err
		}
	}
	if err := s.exec(ctx, "set read_only="+val, "SET GLOBAL read_only="+val); err != nil {
		return err
	}
	if !v.MariaDB && on {
		return s.exec(ctx, "set super_read_only=ON", "SET GLOBAL super_read_only=ON")
	}
	return nil
}

// StopReplica stops both threads of a replication connection ("" = default).
func (s *Server) StopReplica(ctx context.Context, channel string) error {
	return s.replicaCmd(ctx, "STOP SLAVE", channel, "")
}

// StopReplicaSQLThread stops only the SQL (applier) thread.
func (s *Server) StopReplicaSQLThread(ctx context.Context, channel string) error {
	return s.replicaCmd(ctx, "STOP SLAVE", channel, " SQL_THREAD")
}

// StopReplicaIOThread stops only the IO (receiver) thread.
func (s *Server) StopReplicaIOThread(ctx context.Context, channel string) error {
	return s.replicaCmd(ctx, "STOP SLAVE", channel, " IO_THREAD")
}

// StartReplica starts both threads of a replication connection ("" = default).
func (s *Server) StartReplica(ctx context.Context, channel string) error {
	return s.replicaCmd(ctx, "START SLAVE", channel, "")
}

// SkipReplicationEvent makes a replica's SQL thread skip the event group it stopped on and
// run again: its SQL thread stopped, sql_slave_skip_counter=1 for the connection, START
// SLAVE. With GTID the skipped group is one whole transaction.
func (s *Server) SkipReplicationEvent(ctx context.Context, channel string) error {
	ch, err := channelClause(channel)
	if err != nil {
		return fmt.Errorf("skip an event on %s: %w", s.addr, err)
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("skip an event on %s: %w", s.addr, err)
	}
	defer c.Close()
	// The counter is the default connection's; default_master_connection names another.
	stmts := []string{"STOP SLAVE" + ch + " SQL_THREAD", "SET @@SESSION.default_master_connection=" + quoteString(channel),
		"SET GLOBAL sql_slave_skip_counter=1", "START SLAVE" + ch}
	for _, q := range stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("skip an event on %s: %s: %w", s.addr, q, err)
		}
	}
	return nil
}

// ResetReplicaAll forgets a replication connection entirely (RESET SLAVE ... ALL); its
// threads must be stopped.
func (s *Server) ResetReplicaAll(ctx context.Context, channel string) error {
	return s.replicaCmd(ctx, "RESET SLAVE", channel, " ALL")
}

// StopAllReplicas stops every replication connection (STOP ALL SLAVES).
func (s *Server) StopAllReplicas(ctx context.Context) error {
	return s.exec(ctx, "stop all slaves", "STOP ALL SLAVES")
}

// StartAllReplicas starts every replication connection (START ALL SLAVES).
func (s *Server) StartAllReplicas(ctx context.Context) error {
	return s.exec(ctx, "start all slaves", "START ALL SLAVES")
}

func (s *Server) replicaCmd(ctx context.Context, verb, channel, suffix string) error {
	ch, err := channelClause(channel)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", verb, s.addr, err)
	}
	what := verb + suffix
	if channel != "" {
		what += " " + strconv.Quote(channel)
	}
	return s.exec(ctx, what, verb+ch+suffix)
}

// ChangeMaster runs CHANGE MASTER TO with o (the connection's threads must be stopped).
// Neither errors nor logs ever carry the password.
func (s *Server) ChangeMaster(ctx context.Context, o ChangeMasterOptions) error {
	q, err := o.SQL()
	if err != nil {
		return fmt.Errorf("on %s: %w", s.addr, err)
	}
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("change master %q on %s to %s: %w", o.Channel, s.addr, o.Host, redactError(err, o.Password))
	}
	return nil
}

// MasterGTIDWait waits until the server has applied pos (SELECT MASTER_GTID_WAIT) for at
// most timeout, shortened to fit the context's deadline. It returns true when reached,
// false on timeout. MariaDB's NULL result (bad position or error) is an error.
func (s *Server) MasterGTIDWait(ctx context.Context, pos gtid.List, timeout time.Duration) (bool, error) {
	if dl, ok := ctx.Deadline(); ok {
		// Let the server time out first: a context cancel would drop the connection and
		// leave the server-side wait running until its own timeout.
		if left := time.Until(dl) - 100*time.Millisecond; left < timeout {
			timeout = max(left, 0)
		}
	}
	if timeout < 0 {
		timeout = 0
	}
	var res sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos.String(), timeout.Seconds()).Scan(&res)
	if err != nil {
		return false, fmt.Errorf("master_gtid_wait(%s) on %s: %w", pos, s.addr, err)
	}
	if !res.Valid {
		return false, fmt.Errorf("master_gtid_wait(%s) on %s: NULL result", pos, s.addr)
	}
	return res.Int64 == 0, nil
}

// SetGTIDSlavePos sets @@global.gtid_slave_pos (all replication threads must be stopped).
func (s *Server) SetGTIDSlavePos(ctx context.Context, pos gtid.List) error {
	return s.exec(ctx, "set gtid_slave_pos="+pos.String(), "SET GLOBAL gtid_slave_pos = ?", pos.String())
}

// KillThread ends a connection (KILL CONNECTION id).
func (s *Server) KillThread(ctx context.Context, id uint64) error {
	err := s.exec(ctx, "kill "+strconv.FormatUint(id, 10), "KILL CONNECTION "+strconv.FormatUint(id, 10))
	if errNumber(err) == 1094 { // unknown thread id: already gone
		return fmt.Errorf("%w: %w", ErrNoSuchThread, err)
	}
	return err
}

// KillQuery aborts the statement a connection runs, keeping the connection (KILL QUERY id).
func (s *Server) KillQuery(ctx context.Context, id uint64) error {
	err := s.exec(ctx, "kill query "+strconv.FormatUint(id, 10), "KILL QUERY "+strconv.FormatUint(id, 10))
	if errNumber(err) == 1094 {
		return fmt.Errorf("%w: %w", ErrNoSuchThread, err)
	}
	return err
}

// ErrNoSuchThread is returned (wrapped) by KillThread and KillQuery for an unknown id.
var ErrNoSuchThread = errors.New("no such thread")

// Thread is one row of information_schema.PROCESSLIST.
type Thread struct {
	ID      uint64
	User    string
	Host    string
	DB      string
	Command string
	Time    time.Duration
	State   string
	Info    string // the statement, truncated by the server: may hold a password (RedactSQL)
	// Progress is the percentage done of a statement that reports it (ALTER TABLE, LOAD
	// DATA...), 0 otherwise.
	Progress float64
}

// Processlist lists the server's connections (all of them with the PROCESS privilege).
func (s *Server) Processlist(ctx context.Context) ([]Thread, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ID, USER, HOST, DB, COMMAND, TIME_MS, STATE, LEFT(INFO, 1024), PROGRESS
 FROM information_schema.PROCESSLIST ORDER BY ID`)
	if err != nil {
		return nil, fmt.Errorf("processlist of %s: %w", s.addr, err)
	}
	defer rows.Close()
	var out []Thread
	for rows.Next() {
		var (
			t                         Thread
			user, host, db, cmd, info sql.NullString
			state                     sql.NullString
			ms                        float64
		)
		if err := rows.Scan(&t.ID, &user, &host, &db, &cmd, &ms, &state, &info, &t.Progress); err != nil {
			return nil, fmt.Errorf("processlist of %s: %w", s.addr, err)
		}
		t.User, t.Host, t.DB, t.Command, t.State, t.Info = user.String, host.String, db.String, cmd.String, state.String, info.String
		t.Time = time.Duration(ms * float64(time.Millisecond))
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("processlist of %s: %w", s.addr, err)
	}
	return out, nil
}

// ConnectionID returns the id of one pooled connection (useful to exclude oneself from
// kills; with a pool, other calls may use other connections).
func (s *Server) ConnectionID(ctx context.Context) (uint64, error) {
	var id uint64
	if err := s.db.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return 0, fmt.Errorf("connection id on %s: %w", s.addr, err)
	}
	return id, nil
}

// FlushTables runs FLUSH TABLES, which is binlogged: on a new master it writes a GTID
// the replicas then fetch (repman does this after a promotion).
func (s *Server) FlushTables(ctx context.Context) error {
	return s.exec(ctx, "flush tables", "FLUSH TABLES")
}

// FlushTablesLocal runs FLUSH NO_WRITE_TO_BINLOG TABLES (switchover pre-check: waits for
// running statements to release their tables; no GTID).
func (s *Server) FlushTablesLocal(ctx context.Context) error {
	return s.exec(ctx, "flush no_write_to_binlog tables", "FLUSH NO_WRITE_TO_BINLOG TABLES")
}

// FlushBinaryLogs rotates the binary log.
func (s *Server) FlushBinaryLogs(ctx context.Context) error {
	return s.exec(ctx, "flush binary logs", "FLUSH BINARY LOGS")
}

// Shutdown asks the server to shut down (SHUTDOWN statement) and returns once the server
// acknowledged it; the server may need more time to exit.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.exec(ctx, "shutdown", "SHUTDOWN")
	// The server may close the connection before or after its OK packet.
	if err != nil && (errors.Is(err, sql.ErrConnDone) || isConnectionLost(err)) {
		return nil
	}
	return err
}

func isConnectionLost(err error) bool {
	var unexpected = []error{mysqlErrInvalidConn, errUnexpectedEOF}
	for _, e := range unexpected {
		if errors.Is(err, e) {
			return true
		}
	}
	return errNumber(err) == 1053 // server shutdown in progress
}

var (
	mysqlErrInvalidConn = mysql.ErrInvalidConn
	errUnexpectedEOF    = io.ErrUnexpectedEOF
)
