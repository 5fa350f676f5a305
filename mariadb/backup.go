package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// systemSchemas are never dropped by a reseed nor checksummed: they belong to the server.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// ManagerSchema is the manager's own schema on each server (the jobs table): it is neither
// dropped by a reseed nor compared between servers, since each server has its own.
const ManagerSchema = "replication_manager_schema"

// IsSystemSchema reports MariaDB's own schemas.
func IsSystemSchema(name string) bool { return systemSchemas[strings.ToLower(name)] }

// UserDatabases lists the schemas that are not MariaDB's own, sorted.
func (s *Server) UserDatabases(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, fmt.Errorf("databases of %s: %w", s.addr, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("databases of %s: %w", s.addr, err)
		}
		if !IsSystemSchema(n) && n != ManagerSchema {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, rows.Err()
}

// schemaIdent quotes a schema or table name.
func schemaIdent(n string) string { return "`" + strings.ReplaceAll(n, "`", "``") + "`" }

// DropUserDatabases drops every schema that is not MariaDB's own, outside the binary log
// (a reseed empties a replica before loading a logical backup: nothing of it may reach
// other servers).
func (s *Server) DropUserDatabases(ctx context.Context) ([]string, error) {
	dbs, err := s.UserDatabases(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("drop databases on %s: %w", s.addr, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return nil, fmt.Errorf("drop databases on %s: %w", s.addr, err)
	}
	for _, d := range dbs {
		if _, err := c.ExecContext(ctx, "DROP DATABASE IF EXISTS "+schemaIdent(d)); err != nil {
			return nil, fmt.Errorf("drop database %s on %s: %w", d, s.addr, err)
		}
	}
	return dbs, nil
}

// ResetBinaryLog empties the server's binary log (RESET MASTER): a reseeded replica starts
// from the position of its new data, without GTIDs of its own.
func (s *Server) ResetBinaryLog(ctx context.Context) error {
	return s.exec(ctx, "reset master", "RESET MASTER")
}

// StopReplication stops and forgets every replication connection (a server about to be
// reseeded must not apply anything meanwhile).
func (s *Server) StopReplication(ctx context.Context) error {
	st, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	if err := s.StopAllReplicas(ctx); err != nil {
		return err
	}
	for _, r := range st.Replications {
		if err := s.ResetReplicaAll(ctx, r.ConnectionName); err != nil && !isNotConfigured(err) {
			return err
		}
	}
	return nil
}

// TableChecksums returns CHECKSUM TABLE of every base table outside MariaDB's own schemas,
// by "schema.table": two servers hold the same data when their maps are equal.
func (s *Server) TableChecksums(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE'")
	if err != nil {
		return nil, fmt.Errorf("tables of %s: %w", s.addr, err)
	}
	var names []string
	for rows.Next() {
		var sc, t string
		if err := rows.Scan(&sc, &t); err != nil {
			rows.Close()
			return nil, err
		}
		if !IsSystemSchema(sc) && sc != ManagerSchema {
			names = append(names, schemaIdent(sc)+"."+schemaIdent(t))
		}
	}
	rows.Close()
	out := map[string]int64{}
	if len(names) == 0 {
		return out, nil
	}
	sort.Strings(names)
	crows, err := s.db.QueryContext(ctx, "CHECKSUM TABLE "+strings.Join(names, ", ")+" EXTENDED")
	if err != nil {
		return nil, fmt.Errorf("checksum on %s: %w", s.addr, err)
	}
	defer crows.Close()
	for crows.Next() {
		var name string
		var sum sql.NullInt64
		if err := crows.Scan(&name, &sum); err != nil {
			return nil, err
		}
		out[name] = sum.Int64
	}
	return out, crows.Err()
}

// DataDir returns the server's @@datadir.
func (s *Server) DataDir(ctx context.Context) (string, error) {
	var d string
	if err := s.db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&d); err != nil {
		return "", fmt.Errorf("datadir of %s: %w", s.addr, err)
	}
	return d, nil
}
