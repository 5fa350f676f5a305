package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The jobs table of replication-manager (replication_manager_schema.jobs): the manager
// inserts a row per task with the address a partition must stream to (server, port); the
// partition's dbjobs cron script picks the newest row of each task with done=0, marks every
// such row done=1, runs the task, and sets end (and result) when it finished. The columns
// are the original's; `state` (added by later versions) is created too and left at 0.
const jobsTableDDL = "CREATE TABLE IF NOT EXISTS replication_manager_schema.jobs(" +
	"id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, task VARCHAR(20), port INT, server VARCHAR(255), " +
	"done TINYINT NOT NULL DEFAULT 0, state TINYINT NOT NULL DEFAULT 0, result VARCHAR(1000), " +
	"start DATETIME, end DATETIME, KEY idx1(task, done), KEY idx2(result(1), task), KEY idx3(task, state)) ENGINE=InnoDB"

// JobRow is one row of the jobs table.
type JobRow struct {
	ID     int64
	Task   string
	Port   int
	Server string
	Done   bool
	Result string
	Start  time.Time
	End    *time.Time
}

// noBinlog returns a connection whose statements stay out of the binary log: the jobs table
// is each server's own business and must not replicate.
func (s *Server) noBinlog(ctx context.Context) (*sql.Conn, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs on %s: %w", s.addr, err)
	}
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		c.Close()
		return nil, fmt.Errorf("jobs on %s: %w", s.addr, err)
	}
	return c, nil
}

// EnsureJobsTable creates replication_manager_schema.jobs when missing.
func (s *Server) EnsureJobsTable(ctx context.Context) error {
	c, err := s.noBinlog(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS replication_manager_schema", jobsTableDDL} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("jobs table on %s: %w", s.addr, err)
		}
	}
	return nil
}

// ErrJobPending is returned when a row of the same task still waits for the partition.
var ErrJobPending = errors.New("a job of this task still waits to be picked up")

// InsertJob queues a task for the server's dbjobs script: the partition streams to (or
// listens for) server:port. A table made by a later replication-manager holds one row per
// task (UNIQUE(task)): a finished row of the task is then replaced.
func (s *Server) InsertJob(ctx context.Context, task string, port int, server string) (int64, error) {
	if err := s.EnsureJobsTable(ctx); err != nil {
		return 0, err
	}
	c, err := s.noBinlog(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var pending int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM replication_manager_schema.jobs WHERE task=? AND done=0", task).Scan(&pending); err != nil {
		return 0, fmt.Errorf("jobs on %s: %w", s.addr, err)
	}
	if pending > 0 {
		return 0, fmt.Errorf("%s on %s: %w", task, s.addr, ErrJobPending)
	}
	insert := func() (sql.Result, error) {
		return c.ExecContext(ctx, "INSERT INTO replication_manager_schema.jobs(task, port, server, start) VALUES (?, ?, ?, NOW())", task, port, server)
	}
	res, err := insert()
	if errNumber(err) == 1062 { // duplicate key: UNIQUE(task)
		if _, err := c.ExecContext(ctx, "DELETE FROM replication_manager_schema.jobs WHERE task=? AND done=1", task); err != nil {
			return 0, fmt.Errorf("jobs on %s: %w", s.addr, err)
		}
		res, err = insert()
	}
	if err != nil {
		return 0, fmt.Errorf("insert job %s on %s: %w", task, s.addr, err)
	}
	return res.LastInsertId()
}

// Job reads one row of the jobs table.
func (s *Server) Job(ctx context.Context, id int64) (JobRow, error) {
	var r JobRow
	var port sql.NullInt64
	var server, result sql.NullString
	var start, end sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT id, task, port, server, done, result, UNIX_TIMESTAMP(start), UNIX_TIMESTAMP(end) FROM replication_manager_schema.jobs WHERE id=?", id).
		Scan(&r.ID, &r.Task, &port, &server, &r.Done, &result, &start, &end)
	if err != nil {
		return r, fmt.Errorf("job %d on %s: %w", id, s.addr, err)
	}
	r.Port, r.Server, r.Result = int(port.Int64), server.String, result.String
	if start.Valid {
		r.Start = time.Unix(start.Int64, 0)
	}
	if end.Valid {
		t := time.Unix(end.Int64, 0)
		r.End = &t
	}
	return r, nil
}

// CancelJob marks a row done so that no partition picks it up any more.
func (s *Server) CancelJob(ctx context.Context, id int64, why string) error {
	c, err := s.noBinlog(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(why) > 1000 {
		why = why[:1000]
	}
	_, err = c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET done=1, result=COALESCE(result, ?), end=COALESCE(end, NOW()) WHERE id=?", why, id)
	return err
}

// OptimizeTables runs OPTIMIZE NO_WRITE_TO_BINLOG TABLE on every user table (what the
// dbjobs script's mysqlcheck -o --skip-write-binlog does on a partition).
func (s *Server) OptimizeTables(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE'")
	if err != nil {
		return 0, fmt.Errorf("tables of %s: %w", s.addr, err)
	}
	var names []string
	for rows.Next() {
		var sc, t string
		if err := rows.Scan(&sc, &t); err != nil {
			rows.Close()
			return 0, err
		}
		if !IsSystemSchema(sc) {
			names = append(names, schemaIdent(sc)+"."+schemaIdent(t))
		}
	}
	rows.Close()
	for _, n := range names {
		r, err := s.db.QueryContext(ctx, "OPTIMIZE NO_WRITE_TO_BINLOG TABLE "+n)
		if err != nil {
			return 0, fmt.Errorf("optimize %s on %s: %w", n, s.addr, err)
		}
		r.Close()
	}
	return len(names), nil
}

// FlushLogs closes and reopens the server's error and slow query logs (after they were
// collected), outside the binary log.
func (s *Server) FlushLogs(ctx context.Context) error {
	return s.exec(ctx, "flush logs", "FLUSH NO_WRITE_TO_BINLOG ERROR LOGS, SLOW LOGS")
}

// logTables are the log tables RotateLogTables rotates (mysql.general_log, mysql.slow_log:
// written when log_output includes TABLE).
var logTables = []string{"general_log", "slow_log"}

// RotateLogTables rotates the server's log tables as replication-manager does: each is
// swapped for an empty copy in one RENAME (the server allows renaming a log table that
// way even while it logs), the old one kept as <table>_<UTC time>, and only the keep most
// recent copies are kept. Outside the binary log: each server rotates its own. It returns
// the number of tables rotated.
func (s *Server) RotateLogTables(ctx context.Context, keep int, now time.Time) (int, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("rotate log tables of %s: %w", s.addr, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin = 0"); err != nil {
		return 0, fmt.Errorf("rotate log tables of %s: %w", s.addr, err)
	}
	suffix := now.UTC().Format("20060102150405")
	n := 0
	for _, t := range logTables {
		// t comes from logTables, suffix from a time format: no input in these names.
		old, fresh := t+"_"+suffix, t+"_new"
		stmts := []string{
			"DROP TABLE IF EXISTS mysql." + fresh,
			"CREATE TABLE mysql." + fresh + " LIKE mysql." + t,
			"RENAME TABLE mysql." + t + " TO mysql." + old + ", mysql." + fresh + " TO mysql." + t,
		}
		for _, q := range stmts {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return n, fmt.Errorf("rotate mysql.%s on %s: %w", t, s.addr, err)
			}
		}
		n++
		rows, err := c.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='mysql' AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME DESC", t+"\\_2%")
		if err != nil {
			return n, fmt.Errorf("rotated log tables of %s: %w", s.addr, err)
		}
		var copies []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err == nil {
				copies = append(copies, name)
			}
		}
		rows.Close()
		for i := keep; i < len(copies); i++ {
			if _, err := c.ExecContext(ctx, "DROP TABLE IF EXISTS mysql."+schemaIdent(copies[i])); err != nil {
				return n, fmt.Errorf("drop mysql.%s on %s: %w", copies[i], s.addr, err)
			}
		}
	}
	return n, nil
}

// EnsureJobAccount creates the account a partition's job runner logs in with (user@host,
// with grants, each a GRANT clause without TO), or sets its password and grants again, and
// the jobs table its grants may name. Binary log off, like the jobs table: the manager does
// it on every server itself, so nothing replicates (no errant transaction on a replica)
// and a server bootstrapped later is not left without it. The password reaches the server
// as its hash only.
func (s *Server) EnsureJobAccount(ctx context.Context, user, host, password string, grants []string) error {
	if err := s.EnsureJobsTable(ctx); err != nil {
		return err
	}
	c, err := s.noBinlog(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	acct := account(user, host)
	hash := quoteString(NativePasswordHash(password))
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + acct + " IDENTIFIED BY PASSWORD " + hash,
		"ALTER USER " + acct + " IDENTIFIED BY PASSWORD " + hash,
	}
	for _, g := range grants {
		stmts = append(stmts, "GRANT "+g+" TO "+acct)
	}
	for i, q := range stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			what := "create"
			if i > 1 {
				what = "grant " + grants[i-2] + " to"
			}
			// The statement itself carries the hash: it is not in the error.
			return fmt.Errorf("%s job account %s on %s: %w", what, acct, s.addr, err)
		}
	}
	return nil
}
