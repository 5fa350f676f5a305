package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"

	"replication-manager-pro/slowlog"
)

// SlowLogInfo is where the server writes its slow query log.
type SlowLogInfo struct {
	Enabled       bool    // slow_query_log
	Output        string  // log_output: FILE, TABLE, both or NONE
	File          string  // slow_query_log_file, absolute (relative names are under datadir)
	LongQueryTime float64 // long_query_time, seconds
}

// HasOutput reports whether log_output includes o ("FILE" or "TABLE").
func (i SlowLogInfo) HasOutput(o string) bool {
	for _, v := range strings.Split(i.Output, ",") {
		if strings.EqualFold(strings.TrimSpace(v), o) {
			return true
		}
	}
	return false
}

// SlowLogInfo reads the slow log's settings.
func (s *Server) SlowLogInfo(ctx context.Context) (SlowLogInfo, error) {
	var i SlowLogInfo
	var file, datadir string
	err := s.db.QueryRowContext(ctx, "SELECT @@slow_query_log, @@log_output, @@slow_query_log_file, @@datadir, @@long_query_time").
		Scan(&i.Enabled, &i.Output, &file, &datadir, &i.LongQueryTime)
	if err != nil {
		return i, fmt.Errorf("slow log settings of %s: %w", s.addr, err)
	}
	if file != "" && !strings.HasPrefix(file, "/") {
		file = strings.TrimRight(datadir, "/") + "/" + file
	}
	i.File = file
	return i, nil
}

// userHost splits mysql.slow_log's user_host, "app[app] @ localhost [10.0.0.7]".
var userHost = regexp.MustCompile(`^([^\[\s]*)\[[^\]]*\]\s*@\s*(\S*)\s*\[([^\]]*)\]`)

// SlowLogTable reads the newest limit rows of mysql.slow_log (log_output=TABLE), oldest
// first like a file.
func (s *Server) SlowLogTable(ctx context.Context, limit int) ([]slowlog.Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT UNIX_TIMESTAMP(start_time), user_host, TIME_TO_SEC(query_time), TIME_TO_SEC(lock_time),
 rows_sent, rows_examined, db, CONVERT(sql_text USING utf8mb4) FROM mysql.slow_log ORDER BY start_time DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("mysql.slow_log of %s: %w", s.addr, err)
	}
	defer rows.Close()
	out := []slowlog.Entry{}
	for rows.Next() {
		var e slowlog.Entry
		var at float64
		var uh, db, text sql.NullString
		if err := rows.Scan(&at, &uh, &e.QueryTime, &e.LockTime, &e.RowsSent, &e.RowsExamined, &db, &text); err != nil {
			return nil, fmt.Errorf("mysql.slow_log of %s: %w", s.addr, err)
		}
		e.Time = time.Unix(0, int64(at*float64(time.Second))).UTC()
		if m := userHost.FindStringSubmatch(uh.String); m != nil {
			e.User, e.Host = m[1], m[2]
			if e.Host == "" {
				e.Host = m[3]
			}
		}
		e.DB, e.SQL = db.String, text.String
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysql.slow_log of %s: %w", s.addr, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ErrorLogFile returns the server's error log path (log_error, absolute; relative names
// are under datadir), "" when it logs to stderr (its supervisor keeps that).
func (s *Server) ErrorLogFile(ctx context.Context) (string, error) {
	var file, datadir string
	if err := s.db.QueryRowContext(ctx, "SELECT @@log_error, @@datadir").Scan(&file, &datadir); err != nil {
		return "", fmt.Errorf("log_error of %s: %w", s.addr, err)
	}
	if file != "" && !strings.HasPrefix(file, "/") {
		file = strings.TrimRight(datadir, "/") + "/" + file
	}
	return file, nil
}
