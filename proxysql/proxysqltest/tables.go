package proxysqltest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Row is one table row: column name to value; a missing column or nullValue is NULL.
type Row map[string]string

// nullValue marks SQL NULL inside a Row.
const nullValue = "\x00NULL"

type column struct {
	name string
	def  string // default value; nullValue for NULL
	num  bool   // integer column: values are normalised to their decimal form
}

type schema struct {
	cols   []column
	key    []string
	unique [][]string // UNIQUE constraints besides the key
	check  func(Row) error
}

func (s *schema) column(name string) (column, bool) {
	for _, c := range s.cols {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

// rangeCheck is a CHECK constraint of an integer column, worded as ProxySQL's error says it.
type rangeCheck struct {
	col      string
	min, max int64
	text     string
}

func checkRanges(r Row, checks []rangeCheck) error {
	for _, c := range checks {
		v, ok := r[c.col]
		if !ok || v == nullValue {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < c.min || n > c.max {
			return fmt.Errorf("CHECK constraint failed: %s", c.text)
		}
	}
	return nil
}

// The three configuration tables the double keeps, with ProxySQL 2.7.1's columns, defaults
// and constraints (SHOW CREATE TABLE on its admin interface).
var schemas = map[string]*schema{
	"mysql_servers": {
		cols: []column{
			{"hostgroup_id", "0", true}, {"hostname", nullValue, false}, {"port", "3306", true},
			{"gtid_port", "0", true}, {"status", "ONLINE", false}, {"weight", "1", true},
			{"compression", "0", true}, {"max_connections", "1000", true}, {"max_replication_lag", "0", true},
			{"use_ssl", "0", true}, {"max_latency_ms", "0", true}, {"comment", "", false},
		},
		key: []string{"hostgroup_id", "hostname", "port"},
		check: func(r Row) error {
			switch strings.ToUpper(r["status"]) {
			case "ONLINE", "SHUNNED", "OFFLINE_SOFT", "OFFLINE_HARD":
			default:
				return fmt.Errorf("CHECK constraint failed: UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')")
			}
			if r["hostname"] == nullValue {
				return fmt.Errorf("NOT NULL constraint failed: mysql_servers.hostname")
			}
			if r["gtid_port"] != "0" && r["gtid_port"] == r["port"] {
				return fmt.Errorf("CHECK constraint failed: (gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535")
			}
			return checkRanges(r, []rangeCheck{
				{"hostgroup_id", 0, 1<<31 - 1, "hostgroup_id>=0"},
				{"port", 0, 65535, "port >= 0 AND port <= 65535"},
				{"gtid_port", 0, 65535, "(gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535"},
				{"weight", 0, 10000000, "weight >= 0 AND weight <=10000000"},
				{"compression", 0, 1, "compression IN(0,1)"},
				{"max_connections", 0, 1<<62 - 1, "max_connections >=0"},
				{"max_replication_lag", 0, 126144000, "max_replication_lag >= 0 AND max_replication_lag <= 126144000"},
				{"use_ssl", 0, 1, "use_ssl IN(0,1)"},
				{"max_latency_ms", 0, 1<<62 - 1, "max_latency_ms>=0"},
			})
		},
	},
	"mysql_users": {
		cols: []column{
			{"username", nullValue, false}, {"password", nullValue, false}, {"active", "1", true},
			{"use_ssl", "0", true}, {"default_hostgroup", "0", true}, {"default_schema", nullValue, false},
			{"schema_locked", "0", true}, {"transaction_persistent", "1", true}, {"fast_forward", "0", true},
			{"backend", "1", true}, {"frontend", "1", true}, {"max_connections", "10000", true},
			{"attributes", "", false}, {"comment", "", false},
		},
		key:    []string{"username", "backend"},
		unique: [][]string{{"username", "frontend"}},
		check: func(r Row) error {
			if r["username"] == nullValue {
				return fmt.Errorf("NOT NULL constraint failed: mysql_users.username")
			}
			var checks []rangeCheck
			for _, c := range []string{"active", "use_ssl", "schema_locked", "transaction_persistent", "fast_forward", "backend", "frontend"} {
				checks = append(checks, rangeCheck{c, 0, 1, c + " IN (0,1)"})
			}
			return checkRanges(r, append(checks, rangeCheck{"max_connections", 0, 1<<62 - 1, "max_connections >=0"}))
		},
	},
	"mysql_replication_hostgroups": {
		cols: []column{
			{"writer_hostgroup", nullValue, true}, {"reader_hostgroup", nullValue, true},
			{"check_type", "read_only", false}, {"comment", "", false},
		},
		key:    []string{"writer_hostgroup"},
		unique: [][]string{{"reader_hostgroup"}},
		check: func(r Row) error {
			if r["writer_hostgroup"] == nullValue || r["reader_hostgroup"] == nullValue {
				return fmt.Errorf("NOT NULL constraint failed: mysql_replication_hostgroups")
			}
			if r["writer_hostgroup"] == r["reader_hostgroup"] {
				return fmt.Errorf("CHECK constraint failed: reader_hostgroup<>writer_hostgroup AND reader_hostgroup>=0")
			}
			switch strings.ToLower(r["check_type"]) {
			case "read_only", "innodb_read_only", "super_read_only", "read_only|innodb_read_only", "read_only&innodb_read_only":
			default:
				return fmt.Errorf("CHECK constraint failed: LOWER(check_type) IN ('read_only','innodb_read_only','super_read_only','read_only|innodb_read_only','read_only&innodb_read_only')")
			}
			return checkRanges(r, []rangeCheck{
				{"writer_hostgroup", 0, 1<<31 - 1, "writer_hostgroup>=0"},
				{"reader_hostgroup", 0, 1<<31 - 1, "reader_hostgroup<>writer_hostgroup AND reader_hostgroup>=0"},
			})
		},
	},
}

// table is one table: rows in insertion order.
type table struct {
	s    *schema
	rows []Row
}

func (t *table) clone() *table {
	c := &table{s: t.s, rows: make([]Row, len(t.rows))}
	for i, r := range t.rows {
		c.rows[i] = r.clone()
	}
	return c
}

func (r Row) clone() Row {
	c := make(Row, len(r))
	for k, v := range r {
		c[k] = v
	}
	return c
}

func (t *table) keyOf(r Row) string {
	parts := make([]string, len(t.s.key))
	for i, k := range t.s.key {
		parts[i] = r[k]
	}
	return strings.Join(parts, "\x01")
}

// normalise applies defaults and integer normalisation to a new row.
func (t *table) normalise(r Row) (Row, error) {
	out := Row{}
	for _, c := range t.s.cols {
		v, ok := r[c.name]
		if !ok {
			v = c.def
		}
		if c.num && v != nullValue {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("column %s: %q is not an integer", c.name, v)
			}
			v = strconv.FormatInt(n, 10)
		}
		out[c.name] = v // status as given: the configuration keeps its case, LOAD upper-cases it
	}
	for name := range r {
		if _, ok := t.s.column(name); !ok {
			return nil, fmt.Errorf("table has no column named %s", name)
		}
	}
	if t.s.check != nil {
		if err := t.s.check(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insert adds a row; with replace it overwrites the row of the same key, else a duplicate
// key is an error, as SQLite's UNIQUE constraint would be.
func (t *table) insert(r Row, replace bool) error {
	n, err := t.normalise(r)
	if err != nil {
		return err
	}
	k := t.keyOf(n)
	for _, u := range t.s.unique {
		for i := 0; i < len(t.rows); i++ {
			old := t.rows[i]
			if t.keyOf(old) == k || !sameCols(old, n, u) {
				continue
			}
			if !replace {
				return fmt.Errorf("UNIQUE constraint failed: %s", strings.Join(u, ", "))
			}
			// SQLite's REPLACE deletes every row a constraint conflicts with.
			t.rows = append(t.rows[:i], t.rows[i+1:]...)
			i--
		}
	}
	for i, old := range t.rows {
		if t.keyOf(old) == k {
			if !replace {
				return fmt.Errorf("UNIQUE constraint failed: %s", strings.Join(t.s.key, ", "))
			}
			t.rows[i] = n
			return nil
		}
	}
	t.rows = append(t.rows, n)
	return nil
}

func sameCols(a, b Row, cols []string) bool {
	for _, c := range cols {
		if a[c] != b[c] {
			return false
		}
	}
	return true
}

// sorted returns the rows sorted by key (integers numerically).
func (t *table) sorted() []Row {
	out := make([]Row, len(t.rows))
	for i, r := range t.rows {
		out[i] = r.clone()
	}
	sort.SliceStable(out, func(i, j int) bool {
		for _, k := range t.s.key {
			a, b := out[i][k], out[j][k]
			if a == b {
				continue
			}
			if c, _ := t.s.column(k); c.num {
				x, _ := strconv.ParseInt(a, 10, 64)
				y, _ := strconv.ParseInt(b, 10, 64)
				return x < y
			}
			return a < b
		}
		return false
	})
	return out
}
