package mariadb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
)

// SaveOptions say where SaveTransactions finds mariadb-binlog, how it logs in and what it
// saves.
type SaveOptions struct {
	Binary   string // mariadb-binlog or mysqlbinlog; "" looks both up in PATH
	User     string
	Password string    // written to a private option file, never to the command line
	After    gtid.List // the cluster's position: the events after it are saved
	File     string    // the file written
}

// SaveTransactions writes to o.File the events of the server's binary log that come after
// o.After, read over the network by mariadb-binlog: transactions a former master committed
// that the cluster never received. The file replays them with the mariadb client, and
// lists each row change in comments (--verbose).
func (s *Server) SaveTransactions(ctx context.Context, o SaveOptions) error {
	bin := o.Binary
	if bin == "" {
		for _, name := range []string{"mariadb-binlog", "mysqlbinlog"} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				break
			}
		}
		if bin == "" {
			return fmt.Errorf("save transactions of %s: neither mariadb-binlog nor mysqlbinlog is in PATH (backup-mysqlbinlog-path)", s.addr)
		}
	}
	first, err := s.binlogFileHolding(ctx, o.After)
	if err != nil {
		return fmt.Errorf("save transactions of %s: %w", s.addr, err)
	}
	if err := os.MkdirAll(filepath.Dir(o.File), 0o750); err != nil {
		return fmt.Errorf("save transactions of %s: %w", s.addr, err)
	}
	cnf, err := os.CreateTemp("", "rmp-binlog-*.cnf")
	if err != nil {
		return fmt.Errorf("save transactions of %s: %w", s.addr, err)
	}
	defer os.Remove(cnf.Name())
	_, werr := fmt.Fprintf(cnf, "[client]\nuser=%s\npassword=%s\n", optionValue(o.User), optionValue(o.Password))
	if cerr := cnf.Close(); werr != nil || cerr != nil {
		return fmt.Errorf("save transactions of %s: option file: %v %v", s.addr, werr, cerr)
	}
	args := []string{
		"--defaults-extra-file=" + cnf.Name(), // must come first
		"--read-from-remote-server", "--protocol=TCP",
		"--host=" + ipv6.Unbracket(s.addr.Host), "--port=" + strconv.Itoa(s.addr.Port),
		"--start-position=" + o.After.String(), "--to-last-log", "--verbose",
		"--result-file=" + o.File, first,
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("save transactions of %s: %s: %w: %s", s.addr, filepath.Base(bin), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// binlogFileHolding returns the newest binary log file that starts at or before pos: the
// events after pos are in it or in later files.
func (s *Server) binlogFileHolding(ctx context.Context, pos gtid.List) (string, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return "", fmt.Errorf("binary logs: %w", err)
	}
	var files []string
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(cols); i++ {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			rows.Close()
			return "", fmt.Errorf("binary logs: %w", err)
		}
		files = append(files, name)
	}
	rows.Close()
	if len(files) == 0 {
		return "", fmt.Errorf("binary logs: none (log_bin off?)")
	}
	for i := len(files) - 1; i > 0; i-- {
		var raw string
		if err := s.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, 4)", files[i]).Scan(&raw); err != nil {
			continue
		}
		start, err := gtid.Parse(raw)
		if err == nil && pos.Contains(start) {
			return files[i], nil
		}
	}
	return files[0], nil
}

// optionValue quotes a value for a MariaDB option file.
func optionValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}
