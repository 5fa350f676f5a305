package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Read-only inspection of one server for the API's server routes (variables, status,
// master status, replication rows, schemas, tables). Nothing here changes the server.
// Values that may carry secrets come back as the server gave them: the caller redacts
// (RedactSQL, SecretVariable) before showing them.

// Variable is one row of SHOW GLOBAL VARIABLES or SHOW GLOBAL STATUS.
type Variable struct {
	Name  string
	Value string
}

// GlobalVariables runs SHOW GLOBAL VARIABLES, sorted by name (the server's order).
func (s *Server) GlobalVariables(ctx context.Context) ([]Variable, error) {
	return s.nameValues(ctx, "SHOW GLOBAL VARIABLES")
}

// GlobalStatus runs SHOW GLOBAL STATUS, sorted by name (the server's order).
func (s *Server) GlobalStatus(ctx context.Context) ([]Variable, error) {
	return s.nameValues(ctx, "SHOW GLOBAL STATUS")
}

func (s *Server) nameValues(ctx context.Context, q string) ([]Variable, error) {
	return queryAll(ctx, s, strings.ToLower(q), q, func(rows *sql.Rows, v *Variable) error {
		var val sql.NullString
		err := rows.Scan(&v.Name, &val)
		v.Value = val.String
		return err
	})
}

// queryAll runs q and scans every row into a T; errors name what was read and the server.
// The result is never nil, so that an empty answer encodes as [].
func queryAll[T any](ctx context.Context, s *Server, what, q string, scan func(*sql.Rows, *T) error) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, s.addr, err)
	}
	return out, nil
}

// MasterStatus is SHOW MASTER STATUS with @@log_bin and @@gtid_binlog_pos, which say more
// than the file and position on a GTID cluster. File is empty when the binlog is off.
type MasterStatus struct {
	LogBin         bool
	File           string
	Position       uint64
	BinlogDoDB     string
	BinlogIgnoreDB string
	GTIDBinlogPos  string
}

// MasterStatus reads the server's binlog coordinates. Columns are read by name, so that a
// version adding one does not shift the others.
func (s *Server) MasterStatus(ctx context.Context) (MasterStatus, error) {
	var ms MasterStatus
	if err := s.db.QueryRowContext(ctx, "SELECT @@log_bin, @@gtid_binlog_pos").Scan(&ms.LogBin, &ms.GTIDBinlogPos); err != nil {
		return ms, fmt.Errorf("binlog variables of %s: %w", s.addr, err)
	}
	rows, err := s.db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return ms, fmt.Errorf("show master status on %s: %w", s.addr, err)
	}
	defer rows.Close()
	err = scanByName(rows, func() {}, func(col string, v sql.NullString) error {
		var err error
		switch strings.ToLower(col) {
		case "file":
			ms.File = v.String
		case "position":
			ms.Position, err = atou(v.String)
		case "binlog_do_db":
			ms.BinlogDoDB = v.String
		case "binlog_ignore_db":
			ms.BinlogIgnoreDB = v.String
		}
		return err
	})
	if err != nil {
		return ms, fmt.Errorf("show master status on %s: %w", s.addr, err)
	}
	return ms, nil
}

// AllSlavesStatus runs SHOW ALL SLAVES STATUS: one entry per replication connection.
func (s *Server) AllSlavesStatus(ctx context.Context) ([]Replication, error) {
	r, err := s.replications(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.addr, err)
	}
	return r, nil
}

// Schema is one database with the sizes information_schema reports for its tables
// (estimates for InnoDB, as SHOW TABLE STATUS).
type Schema struct {
	Name        string
	Tables      int64
	DataLength  int64
	IndexLength int64
}

// systemSchemaList is systemSchemas as an SQL list of literals, for NOT IN.
func systemSchemaList() string {
	l := make([]string, 0, len(systemSchemas))
	for n := range systemSchemas {
		l = append(l, quoteString(n))
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// Schemas lists every database with its table count and sizes, by name.
func (s *Server) Schemas(ctx context.Context) ([]Schema, error) {
	return queryAll(ctx, s, "schemas", `SELECT s.SCHEMA_NAME, COUNT(t.TABLE_NAME),
 COALESCE(SUM(t.DATA_LENGTH), 0), COALESCE(SUM(t.INDEX_LENGTH), 0)
 FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
 GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME`, func(rows *sql.Rows, sc *Schema) error {
		return rows.Scan(&sc.Name, &sc.Tables, &sc.DataLength, &sc.IndexLength)
	})
}

// Table is one base table of a user database.
type Table struct {
	Schema      string
	Name        string
	Engine      string
	Rows        int64
	DataLength  int64
	IndexLength int64
}

// Tables lists the base tables of the user databases, biggest first, at most limit of them
// (a server may hold hundreds of thousands).
func (s *Server) Tables(ctx context.Context, limit int) ([]Table, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("tables of %s: limit %d", s.addr, limit)
	}
	return queryAll(ctx, s, "tables", `SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE, ''),
 COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0), COALESCE(INDEX_LENGTH, 0)
 FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (`+systemSchemaList()+`)
 ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_SCHEMA, TABLE_NAME LIMIT `+strconv.Itoa(limit),
		func(rows *sql.Rows, t *Table) error {
			return rows.Scan(&t.Schema, &t.Name, &t.Engine, &t.Rows, &t.DataLength, &t.IndexLength)
		})
}

// scanByName reads rows by column name, so that columns added or moved by another MariaDB
// version do not shift values: newRow is called at each row, then set for each column.
func scanByName(rows *sql.Rows, newRow func(), set func(col string, v sql.NullString) error) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		newRow()
		for i, c := range cols {
			if err := set(c, vals[i]); err != nil {
				return fmt.Errorf("column %s=%q: %w", c, vals[i].String, err)
			}
		}
	}
	return rows.Err()
}

// InnoDBStatus returns SHOW ENGINE INNODB STATUS's text (the latest deadlock, the
// transactions, the semaphores).
func (s *Server) InnoDBStatus(ctx context.Context) (string, error) {
	var typ, name, status string
	if err := s.db.QueryRowContext(ctx, "SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status); err != nil {
		return "", fmt.Errorf("innodb status of %s: %w", s.addr, err)
	}
	return status, nil
}
