package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"replication-manager-pro/configurator"
	"replication-manager-pro/errlog"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/slowlog"
)

// The logs of a server (docs/api.md "Server inspection"). The slow query log: its entries
// (slow-queries) and their digests (digest-statements-slow), from the first source that
// exists: mysql.slow_log when log_output includes TABLE; the copy the jobs collected
// (actions/backup-slowquery-log, the scheduler) in the node directory; the server's own file
// when the server runs on this machine. Statements are redacted like the processlist.

// GrantDBLogs is the original's grant for reading a server's logs (its errorlog and slow-queries routes).
const GrantDBLogs = "db-logs"

// maxSlowEntries bounds what one answer reads: the newest entries.
const maxSlowEntries = 1000

// maxSlowFileTail is how much of the end of a slow log file is read.
const maxSlowFileTail = 16 << 20

func (s *Server) slowLogRoutes() []route {
	p := clusterPrefix + "/servers/{s}"
	return []route{
		{pattern: p + "/slow-queries", protected: true, grant: GrantDBLogs,
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) { s.handleSlowLog(w, r, rc, false) }},
		{pattern: p + "/digest-statements-slow", protected: true, grant: GrantDBLogs,
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) { s.handleSlowLog(w, r, rc, true) }},
		{pattern: p + "/errorlog", protected: true, grant: GrantDBLogs, handler: s.handleErrorLog},
	}
}

// handleErrorLog answers the server's error log, newest first: the copy the jobs collected
// (actions/backup-error-log), else the server's own log_error file when the server runs on
// this machine. Texts are redacted like statements (a failed replicated statement is quoted
// in full).
func (s *Server) handleErrorLog(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.withServer(w, r, rc, func(ctx context.Context, addr ipv6.HostPort, sr ServerReader) { s.errorLog(ctx, w, r, rc, addr, sr) })
}

func (s *Server) errorLog(ctx context.Context, w http.ResponseWriter, r *http.Request, rc *reqCtx, addr ipv6.HostPort, sr ServerReader) {
	own, err := sr.ErrorLogFile(ctx)
	if err != nil {
		s.inspectFailed(w, r, rc, addr, err)
		return
	}
	collected := filepath.Join(configurator.NodeDatadir(&rc.member.Config.Settings, rc.member.Name, addr), "log", "log_error.log")
	files := []string{collected}
	if own != "" && isLocalHost(ctx, addr.Host) {
		files = append(files, own)
	}
	for _, f := range files {
		var entries []errlog.Entry
		err := readTail(f, func(rd io.Reader) (err error) { entries, err = errlog.Parse(rd, maxSlowEntries); return err })
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, inspectError{Error: fmt.Sprintf("error log %s: %v", f, err), Server: addr.String()})
			return
		}
		for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 { // newest first
			entries[i], entries[j] = entries[j], entries[i]
		}
		for i := range entries {
			entries[i].Text = mariadb.RedactSQL(entries[i].Text)
		}
		if entries == nil {
			entries = []errlog.Entry{}
		}
		w.Header().Set("X-Error-Log-Source", "file "+f)
		writeJSON(w, http.StatusOK, entries)
		return
	}
	where := "it logs to stderr (log_error is empty): its supervisor keeps that"
	if own != "" {
		where = fmt.Sprintf("its file %s is not on this machine", own)
	}
	writeJSON(w, http.StatusNotFound, inspectError{Server: addr.String(), Error: fmt.Sprintf(
		"no error log to read for %s: %s; collect it (actions/backup-error-log) into %s", addr, where, collected)})
}

func (s *Server) handleSlowLog(w http.ResponseWriter, r *http.Request, rc *reqCtx, digests bool) {
	s.withServer(w, r, rc, func(ctx context.Context, addr ipv6.HostPort, sr ServerReader) {
		s.slowLog(ctx, w, r, rc, addr, sr, digests)
	})
}

func (s *Server) slowLog(ctx context.Context, w http.ResponseWriter, r *http.Request, rc *reqCtx, addr ipv6.HostPort, sr ServerReader, digests bool) {
	info, err := sr.SlowLogInfo(ctx)
	if err != nil {
		s.inspectFailed(w, r, rc, addr, err)
		return
	}
	var entries []slowlog.Entry
	var source string
	collected := filepath.Join(configurator.NodeDatadir(&rc.member.Config.Settings, rc.member.Name, addr), "log", "log_slow_query.log")
	switch {
	case info.HasOutput("TABLE"):
		source = "table mysql.slow_log"
		if entries, err = sr.SlowLogTable(ctx, maxSlowEntries); err != nil {
			s.inspectFailed(w, r, rc, addr, err)
			return
		}
	default:
		for _, f := range slowLogFiles(ctx, collected, info, addr) {
			err = readTail(f, func(rd io.Reader) (err error) { entries, err = slowlog.Parse(rd, maxSlowEntries); return err })
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, inspectError{Error: fmt.Sprintf("slow log %s: %v", f, err), Server: addr.String()})
				return
			}
			source = "file " + f
			break
		}
	}
	if source == "" {
		why := "slow_query_log is OFF"
		if info.Enabled {
			why = fmt.Sprintf("log_output is %s and the file %s is not on this machine", info.Output, info.File)
		}
		writeJSON(w, http.StatusNotFound, inspectError{Server: addr.String(), Error: fmt.Sprintf(
			"no slow query log to read for %s: %s; set log_output=TABLE, or collect the file (actions/backup-slowquery-log) into %s", addr, why, collected)})
		return
	}
	for i := range entries {
		entries[i].SQL = mariadb.RedactSQL(entries[i].SQL)
	}
	w.Header().Set("X-Slow-Log-Source", source)
	if digests {
		writeJSON(w, http.StatusOK, slowlog.Digests(entries))
		return
	}
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 { // newest first
		entries[i], entries[j] = entries[j], entries[i]
	}
	if entries == nil {
		entries = []slowlog.Entry{}
	}
	writeJSON(w, http.StatusOK, entries)
}

// slowLogFiles are the files to try, in order: the collected copy, then the server's own
// file when the server's address is this machine's (another machine's path here would be
// some other file).
func slowLogFiles(ctx context.Context, collected string, info mariadb.SlowLogInfo, addr ipv6.HostPort) []string {
	out := []string{collected}
	if info.Enabled && info.HasOutput("FILE") && info.File != "" && isLocalHost(ctx, addr.Host) {
		out = append(out, info.File)
	}
	return out
}

// isLocalHost reports whether host (an IP literal or a name) is an address of this machine.
func isLocalHost(ctx context.Context, host string) bool {
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		resolved, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return false
		}
		ips = ips[:0]
		for _, a := range resolved {
			ips = append(ips, a.IP)
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.IsLoopback() {
			return true
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// readTail hands parse the end of a log file: its last maxSlowFileTail bytes (the entry cut
// at the start is skipped by the parsers).
func readTail(path string, parse func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if st.Size() > maxSlowFileTail {
		if _, err := f.Seek(st.Size()-maxSlowFileTail, io.SeekStart); err != nil {
			return err
		}
	}
	return parse(f)
}
