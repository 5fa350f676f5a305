package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
)

// The heartbeat replication-manager writes through proxies, kept in the same form so that
// tools reading it keep working: a view replaced each tick, whose one column holds a
// unique token. Replaced on the master, it replicates as DDL; a replica's copy tells which
// heartbeat it has applied.
const (
	HeartbeatSchema = "replication_manager_schema"
	HeartbeatView   = HeartbeatSchema + ".pseudo_gtid_v"
)

// heartbeatToken is what a heartbeat token may hold: it is written into a statement.
var heartbeatToken = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// errUnknownDatabase is MariaDB's ER_BAD_DB_ERROR.
const errUnknownDatabase = 1049

// WriteHeartbeat replaces the heartbeat view with one holding token, creating the schema
// when it is missing (both statements go to the binary log: replicas must get them). It
// refuses to write when the server is read_only (a replica, or a master being frozen by a
// switchover): the heartbeat must never become an errant transaction.
func (s *Server) WriteHeartbeat(ctx context.Context, token string) error {
	if !heartbeatToken.MatchString(token) {
		return fmt.Errorf("heartbeat %s: bad token %q", s.addr, token)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", s.addr, err)
	}
	defer conn.Close()
	var ro int
	if err := conn.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return fmt.Errorf("heartbeat %s: %w", s.addr, err)
	}
	if ro != 0 {
		return fmt.Errorf("heartbeat %s: read_only is on", s.addr)
	}
	stmt := "CREATE OR REPLACE VIEW " + HeartbeatView + " AS SELECT " + quoteString(token) + " AS heartbeat"
	_, err = conn.ExecContext(ctx, stmt)
	if errNumber(err) == errUnknownDatabase {
		if _, err = conn.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+HeartbeatSchema); err == nil {
			_, err = conn.ExecContext(ctx, stmt)
		}
	}
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", s.addr, err)
	}
	return nil
}

// ReadHeartbeat returns the token of the heartbeat view on this server; "" and no error
// when the view does not exist yet.
func (s *Server) ReadHeartbeat(ctx context.Context) (string, error) {
	var token sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT * FROM "+HeartbeatView).Scan(&token)
	switch n := errNumber(err); {
	case err == nil:
		return token.String, nil
	case n == errUnknownDatabase || n == 1146: // no schema, no view
		return "", nil
	}
	return "", fmt.Errorf("heartbeat %s: %w", s.addr, err)
}
