package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/gtid"
)

// This file holds the server operations the executor composes into plans: positions, long
// writes, a pinned session for freezing a master, and one "replicate from" operation. The
// executor calls these and holds no SQL text of its own.

// CurrentGTIDPos returns @@GLOBAL.gtid_current_pos: everything the server wrote or applied.
func (s *Server) CurrentGTIDPos(ctx context.Context) (gtid.List, error) {
	return s.gtidVar(ctx, "gtid_current_pos")
}

// BinlogGTIDPos returns @@GLOBAL.gtid_binlog_pos: what the server's binary log holds.
func (s *Server) BinlogGTIDPos(ctx context.Context) (gtid.List, error) {
	return s.gtidVar(ctx, "gtid_binlog_pos")
}

func (s *Server) gtidVar(ctx context.Context, name string) (gtid.List, error) {
	var raw string
	// name is one of two constants above, never input.
	if err := s.db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&raw); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", name, s.addr, err)
	}
	l, err := gtid.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", name, s.addr, err)
	}
	return l, nil
}

// LongWrites counts client write statements running for at least d and InnoDB transactions
// open for at least d: a switchover would kill them or wait for them.
func (s *Server) LongWrites(ctx context.Context, d time.Duration) (statements, transactions int, err error) {
	threads, err := s.Processlist(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range threads {
		if t.IsClientWrite() && t.Time >= d {
			statements++
		}
	}
	err = s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_started < NOW() - INTERVAL ? SECOND",
		int(d.Seconds())).Scan(&transactions)
	if err != nil {
		return 0, 0, fmt.Errorf("long transactions on %s: %w", s.addr, err)
	}
	return statements, transactions, nil
}

// ClientWritesRunning reports whether any client statement that may write runs now.
func (s *Server) ClientWritesRunning(ctx context.Context) (bool, error) {
	threads, err := s.Processlist(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range threads {
		if t.IsClientWrite() {
			return true, nil
		}
	}
	return false, nil
}

// IsClientWrite reports a client statement that may write (anything but a read).
func (t Thread) IsClientWrite() bool {
	if t.Command != "Query" || t.User == "system user" {
		return false
	}
	if strings.Contains(t.Info, watchMark) {
		return false // the monitor's own watch of the master (Watch)
	}
	q := strings.ToUpper(strings.TrimSpace(t.Info))
	return q != "" && !strings.HasPrefix(q, "SELECT") && !strings.HasPrefix(q, "SHOW") && !strings.Contains(q, "INFORMATION_SCHEMA.PROCESSLIST")
}

// killable reports a connection a freeze must end: every client but replication's own,
// the server's daemons and the freezing session. fenceSQL (fence.go) says the same in SQL.
func (t Thread) killable(self uint64) bool {
	return t.ID != self && t.User != "system user" && t.User != "event_scheduler" &&
		!strings.HasPrefix(t.Command, "Binlog Dump") && t.Command != "Daemon" && t.Command != "Slave_IO" && t.Command != "Slave_SQL" &&
		t.Command != "Slave_worker"
}

// Session is one connection held apart from the pool, so that a read lock taken on it stays
// until Unlock or Close, and kills issued through it never hit itself.
type Session struct {
	s    *Server
	c    *sql.Conn
	self uint64
}

// PinSession opens a dedicated session on the server.
func (s *Server) PinSession(ctx context.Context) (*Session, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("session on %s: %w", s.addr, err)
	}
	var self uint64
	if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		c.Close()
		return nil, fmt.Errorf("session on %s: %w", s.addr, err)
	}
	return &Session{s: s, c: c, self: self}, nil
}

// KillClients ends every client connection but this session's own and replication's.
// It lists and kills through the session: a pooled connection could be among the killed.
func (p *Session) KillClients(ctx context.Context) error {
	rows, err := p.c.QueryContext(ctx, "SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST")
	if err != nil {
		return fmt.Errorf("processlist of %s: %w", p.s.addr, err)
	}
	var ids []uint64
	for rows.Next() {
		var t Thread
		var user, cmd sql.NullString
		if err := rows.Scan(&t.ID, &user, &cmd); err != nil {
			rows.Close()
			return fmt.Errorf("processlist of %s: %w", p.s.addr, err)
		}
		t.User, t.Command = user.String, cmd.String
		if t.killable(p.self) {
			ids = append(ids, t.ID)
		}
	}
	rows.Close()
	for _, id := range ids {
		// KILL takes no placeholder; id is a number read from the server.
		if _, err := p.c.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil && errNumber(err) != 1094 {
			return fmt.Errorf("kill connection %d on %s: %w", id, p.s.addr, err)
		}
	}
	return nil
}

// ErrLockWait is returned when a statement waited for a lock longer than its bound.
var ErrLockWait = errors.New("lock wait timeout")

// SetReadOnlyWithin sets read_only=ON through the session, waiting at most wait (rounded up
// to whole seconds, at least one: lock_wait_timeout's unit) for the global read lock it
// takes. That lock waits for every running write statement, and one waiting for a row lock
// held by an open transaction would keep it, and every other write, waiting until
// innodb_lock_wait_timeout: past wait, the error wraps ErrLockWait and the caller ends the
// clients first.
func (p *Session) SetReadOnlyWithin(ctx context.Context, wait time.Duration) error {
	secs := int64((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if _, err := p.c.ExecContext(ctx, "SET SESSION lock_wait_timeout="+strconv.FormatInt(secs, 10)); err != nil {
		return fmt.Errorf("set read_only=ON on %s: %w", p.s.addr, err)
	}
	_, err := p.c.ExecContext(ctx, "SET GLOBAL read_only=ON")
	if errNumber(err) == 1205 {
		err = ErrLockWait
	}
	if err != nil {
		return fmt.Errorf("set read_only=ON on %s: %w", p.s.addr, err)
	}
	// The session's later statements (the read lock) have their own bounds.
	if _, err := p.c.ExecContext(ctx, "SET SESSION lock_wait_timeout=DEFAULT"); err != nil {
		return fmt.Errorf("session on %s: %w", p.s.addr, err)
	}
	if v, err := p.s.Version(ctx); err != nil {
		return fmt.Errorf("set read_only=ON on %s: %w", p.s.addr, err)
	} else if !v.MariaDB {
		// As SetReadOnly: privileged clients too, where MySQL has it.
		return p.s.exec(ctx, "set super_read_only=ON", "SET GLOBAL super_read_only=ON")
	}
	return nil
}

// ReadLock takes FLUSH TABLES WITH READ LOCK on the session: even privileged clients stop
// writing until Unlock or Close.
func (p *Session) ReadLock(ctx context.Context) error {
	if _, err := p.c.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return fmt.Errorf("read lock on %s: %w", p.s.addr, err)
	}
	return nil
}

// BinlogGTIDPos reads the binary log position through the session (final once locked).
func (p *Session) BinlogGTIDPos(ctx context.Context) (gtid.List, error) {
	var raw string
	if err := p.c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&raw); err != nil {
		return nil, fmt.Errorf("gtid_binlog_pos of %s: %w", p.s.addr, err)
	}
	l, err := gtid.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("gtid_binlog_pos of %s: %w", p.s.addr, err)
	}
	return l, nil
}

// Unlock releases the session's read lock.
func (p *Session) Unlock(ctx context.Context) error {
	if _, err := p.c.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		return fmt.Errorf("unlock %s: %w", p.s.addr, err)
	}
	return nil
}

// Close ends the session (the server releases any lock it held).
func (p *Session) Close() error { return p.c.Close() }

// ReplicateOptions say how a server should replicate from a source.
type ReplicateOptions struct {
	ChangeMasterOptions
	// Position, when set, becomes gtid_slave_pos before the connection starts: the server
	// continues from exactly there. Empty keeps the server's own slave position.
	Position gtid.List
	// StopAll stops every replication connection first (a former master, a bootstrap);
	// otherwise only the connection named by Channel is stopped.
	StopAll bool
	// ReadOnly is the read_only state to leave the server in once replicating.
	ReadOnly bool
}

// ReplicateFrom makes the server replicate from o.Host: stop, optional position, CHANGE
// MASTER with GTID, start, read_only. Every call leaves the same result, so it is safe to
// repeat after a crash half-way.
func (s *Server) ReplicateFrom(ctx context.Context, o ReplicateOptions) error {
	if o.StopAll {
		if err := s.StopAllReplicas(ctx); err != nil {
			return err
		}
	} else if err := s.StopReplica(ctx, o.Channel); err != nil && !isNotConfigured(err) {
		return err
	}
	if len(o.Position) > 0 {
		if err := s.SetGTIDSlavePos(ctx, o.Position); err != nil {
			return err
		}
	}
	if err := s.ChangeMaster(ctx, o.ChangeMasterOptions); err != nil {
		return err
	}
	if err := s.StartReplica(ctx, o.Channel); err != nil {
		return err
	}
	return s.SetReadOnly(ctx, o.ReadOnly)
}

// Detach stops and forgets the replication connections of a server that becomes a master
// (all of them, or only channel when only is true) and makes it writable when writable.
func (s *Server) Detach(ctx context.Context, channels []string) error {
	for _, ch := range channels {
		if err := s.StopReplica(ctx, ch); err != nil && !isNotConfigured(err) {
			return err
		}
		if err := s.ResetReplicaAll(ctx, ch); err != nil && !isNotConfigured(err) {
			return err
		}
	}
	return nil
}

// ResetReplication leaves the server with no replication and an empty binary log and
// position (the API's replication cleanup): every connection stopped and forgotten,
// RESET MASTER, gtid_slave_pos emptied.
func (s *Server) ResetReplication(ctx context.Context, channels []string) error {
	if err := s.StopAllReplicas(ctx); err != nil {
		return err
	}
	for _, ch := range append([]string{""}, channels...) {
		if err := s.ResetReplicaAll(ctx, ch); err != nil && ch != "" && !isNotConfigured(err) {
			return err
		}
	}
	if err := s.exec(ctx, "reset master", "RESET MASTER"); err != nil {
		return err
	}
	return s.SetGTIDSlavePos(ctx, nil)
}

// isNotConfigured reports MariaDB's "no such replication connection" (ER_SLAVE_NOT_CONFIGURED
// 1200, or 1617 for a named connection that does not exist).
func isNotConfigured(err error) bool {
	n := errNumber(err)
	return n == 1200 || n == 1617
}
