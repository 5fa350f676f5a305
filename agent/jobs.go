package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/backup"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// The database jobs of replication-manager's protocol (SlapOS' dbjobs script): the manager
// writes a row per task in the server's replication_manager_schema.jobs with the address to
// stream to (server, port); the partition takes the newest row of each task (done=1 on every
// pending row of it), runs the task and sets end and result. The agent polls the table every
// JobPoll through the server's socket with dbjob.cnf's login while mariadbd runs.
//
//	mariabackup        mariadb-backup --backup --stream=xbstream to server:port
//	reseedmariabackup  listen on the row's port at the database's address, extract and prepare
//	                   the stream beside the datadir, stop mariadbd, put the files where the
//	                   bundle's my.cnf wants them (redo and undo logs, aria logs under .system),
//	                   start mariadbd on them (the old datadir comes back if it does not start)
//	reseedmysqldump    listen on the row's port, copy the stopped datadir, gunzip | the mariadb
//	                   client (binary log off); the copy comes back if the load fails
//	flashbackmariabackup, flashbackmysqldump  the same, then the server at the backup's GTID
//	                   position: binary log emptied, gtid_slave_pos set, replica settings kept
//	                   and started (restore.go)
//	zfssnapback, xtrabackup tasks  answered at once with "not supported"
//	error, slowquery   the error log / slow query log to server:port, then emptied
//	optimize           OPTIMIZE NO_WRITE_TO_BINLOG TABLE on every user table
//	stop, start, restart  the supervisor
const JobPoll = time.Second

// jobTasks are the tasks the agent runs, in the order it looks for them.
// flashbackmariabackup is what replication-manager writes ("flashback" + backup-physical-type);
// the dbjobs scripts look for "flashbackmariadbackup", 21 characters, which the task column
// (VARCHAR(20)) cannot hold.
var jobTasks = []string{"reseedmariabackup", "flashbackmariabackup", "reseedmysqldump", "flashbackmysqldump",
	"mariabackup", "error", "slowquery", "optimize", "stop", "start", "restart",
	"zfssnapback", "xtrabackup", "reseedxtrabackup", "flashbackxtrabackup"}

const jobsTableDDL = "CREATE TABLE IF NOT EXISTS replication_manager_schema.jobs(" +
	"id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, task VARCHAR(20), port INT, server VARCHAR(255), " +
	"done TINYINT NOT NULL DEFAULT 0, state TINYINT NOT NULL DEFAULT 0, result VARCHAR(1000), " +
	"start DATETIME, end DATETIME, KEY idx1(task, done), KEY idx2(result(1), task), KEY idx3(task, state)) ENGINE=InnoDB"

type jobRow struct {
	id     int64
	task   string
	server string
	port   int
}

// localConn is one session on the partition's server through openLocal, for statements
// that must share it (a session variable); done closes it and its pool.
func (l Layout) localConn(ctx context.Context) (c *sql.Conn, done func(), err error) {
	db, err := l.openLocal()
	if err != nil {
		return nil, nil, err
	}
	if c, err = db.Conn(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); db.Close() }, nil
}

// openLocal opens the partition's server through its socket with dbjob.cnf's login.
func (l Layout) openLocal() (*sql.DB, error) {
	user, pw, socket, err := clientOptions(l.DBJobCnf())
	if err != nil {
		return nil, err
	}
	if socket == "" {
		return nil, fmt.Errorf("%s: no socket", l.DBJobCnf())
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, pw, "unix", socket
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 30*time.Second, 30*time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	return db, nil
}

// jobsLoop looks for jobs while mariadbd runs, until ctx ends.
func (a *Agent) jobsLoop(ctx context.Context) {
	t := time.NewTicker(JobPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := a.sup.ask(ctx, "status", "")
		if err != nil || st.State != "running" || !exists(a.l.DBJobCnf()) {
			continue
		}
		a.runJobs(ctx)
	}
}

// runJobs takes and runs the pending jobs once.
func (a *Agent) runJobs(ctx context.Context) {
	db, err := a.l.openLocal()
	if err != nil {
		return
	}
	defer func() { db.Close() }() // db is opened again after each job
	pending, err := pendingTasks(ctx, db)
	if err != nil || len(pending) == 0 {
		return
	}
	for _, task := range jobTasks {
		if !pending[task] {
			continue
		}
		row, ok, err := takeJob(ctx, db, task)
		if err != nil || !ok {
			continue
		}
		log := a.log.WithField("job", row.id).WithField("task", task)
		log.Info("job taken")
		t0 := time.Now()
		a.inJob.Store(true)
		result, err := a.runJob(ctx, db, row)
		a.inJob.Store(false)
		failed := err != nil
		took := time.Since(t0).Round(time.Millisecond).String()
		if err != nil {
			result = "failed: " + err.Error()
			log.WithError(err).Error("job failed")
		} else {
			log.WithField("took", took).Info("job done")
		}
		res, msg := outcome(err)
		a.rep.send(slapos.AgentReport{Action: "job:" + task, Via: "jobs", Result: res, Error: msg,
			Detail: "job " + strconv.FormatInt(row.id, 10) + ", " + took})
		// A restore replaced the data, its job row with it, and restarted mariadbd: open
		// again and put the row back, waiting a while for a server the supervisor is
		// restarting (a row left without its end would look pending to the manager).
		db.Close()
		if db, err = a.l.openLocal(); err != nil {
			return
		}
		for i := 0; ; i++ {
			if err = endJob(ctx, db, row, result, failed); err == nil || i == 30 || !sleep(ctx, 2*time.Second) {
				break
			}
		}
		if err != nil {
			log.WithError(err).Warn("job end not recorded")
		}
	}
}

// pendingTasks lists the tasks with a pending row, without an SQL error when the table does
// not exist (the sqlerror tag logs every failed statement).
func pendingTasks(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='replication_manager_schema' AND TABLE_NAME='jobs'").Scan(&n); err != nil || n == 0 {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT task FROM replication_manager_schema.jobs WHERE done=0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var t sql.NullString
		if err := rows.Scan(&t); err == nil && t.Valid {
			out[t.String] = true
		}
	}
	return out, rows.Err()
}

// takeJob picks the newest pending row of task and marks every pending row of it taken.
func takeJob(ctx context.Context, db *sql.DB, task string) (jobRow, bool, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return jobRow{}, false, err
	}
	defer c.Close()
	r := jobRow{task: task}
	var server sql.NullString
	var port sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT id, server, port FROM replication_manager_schema.jobs WHERE task=? AND done=0 ORDER BY id DESC LIMIT 1", task).
		Scan(&r.id, &server, &port)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err // no table yet: no job
	}
	r.server, r.port = server.String, int(port.Int64)
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return r, false, err
	}
	if _, err := c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET done=1 WHERE done=0 AND task=?", task); err != nil {
		return r, false, err
	}
	// Running (state 1) for replication-manager's later protocol.
	if hasStateColumn(ctx, c) {
		c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET state=1 WHERE id=?", r.id)
	}
	return r, true, nil
}

// endJob sets the row's end and result, putting the row back first when the data was
// replaced (a reseed: the restored jobs table is the donor's), and its state as
// replication-manager's later protocol reads it: 3 (finished: that manager then starts a
// restored replica's threads) or 5 (failed).
func endJob(ctx context.Context, db *sql.DB, r jobRow, result string, failed bool) error {
	if len(result) > 1000 {
		result = result[len(result)-1000:]
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range []string{"SET SESSION sql_log_bin=0", "CREATE DATABASE IF NOT EXISTS replication_manager_schema", jobsTableDDL} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if _, err := c.ExecContext(ctx, "INSERT IGNORE INTO replication_manager_schema.jobs(id, task, port, server, done, start) VALUES (?, ?, ?, ?, 1, NOW())",
		r.id, r.task, r.port, r.server); err != nil {
		return err
	}
	state := 3
	if failed {
		state = 5
	}
	// One statement: whoever sees the end sees the state.
	if hasStateColumn(ctx, c) {
		_, err = c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET done=1, end=NOW(), result=?, state=? WHERE id=?", result, state, r.id)
	} else {
		_, err = c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET done=1, end=NOW(), result=? WHERE id=?", result, r.id)
	}
	return err
}

// hasStateColumn tells whether the jobs table has replication-manager's later state column
// (SlapOS' and older tables do not): asked rather than tried, since the sqlerror tag logs
// every failed statement.
func hasStateColumn(ctx context.Context, c *sql.Conn) bool {
	var n int
	err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='replication_manager_schema' "+
		"AND TABLE_NAME='jobs' AND COLUMN_NAME='state'").Scan(&n)
	return err == nil && n > 0
}

func (a *Agent) runJob(ctx context.Context, db *sql.DB, r jobRow) (string, error) {
	switch r.task {
	case "reseedmariabackup", "flashbackmariabackup":
		return a.restorePhysical(ctx, db, r, r.task == "flashbackmariabackup")
	case "reseedmysqldump", "flashbackmysqldump":
		return a.restoreLogical(ctx, db, r, r.task == "flashbackmysqldump")
	case "mariabackup":
		return a.backupPhysical(ctx, r)
	case "error":
		return a.sendLog(ctx, r, a.l.ErrorLog())
	case "slowquery":
		return a.sendLog(ctx, r, filepath.Join(a.l.System(), "logs", "slow-query.log"))
	case "optimize":
		return optimize(ctx, db)
	case "stop", "start", "restart":
		_, err := a.sup.ask(ctx, r.task, "job "+strconv.FormatInt(r.id, 10))
		return r.task + " done", err
	}
	if why, ok := unsupportedTasks[r.task]; ok {
		return "", fmt.Errorf("%s: %s", r.task, why)
	}
	return "", fmt.Errorf("task %q not supported", r.task)
}

// listen opens the row's port at the database's address, for a stream the manager sends.
func (a *Agent) listen(r jobRow) (net.Listener, error) {
	if r.port <= 0 || r.port > 65535 {
		return nil, fmt.Errorf("port %d", r.port)
	}
	return net.Listen("tcp", net.JoinHostPort(ipv6.Unbracket(a.cfg.Addr.Host), strconv.Itoa(r.port)))
}

func accept(ctx context.Context, l net.Listener, limit time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }() // ends when l is closed
	select {
	case x := <-ch:
		return x.c, x.err
	case <-time.After(limit):
		l.Close()
		return nil, fmt.Errorf("no stream within %s", limit)
	case <-ctx.Done():
		l.Close()
		return nil, ctx.Err()
	}
}

// placeRestored lays a prepared backup out as the bundle's my.cnf wants it: the redo log
// under .system/innodb/redo, undo tablespaces under .system/innodb/undo, aria logs under
// .system/aria, the rest in the datadir; the other .system directories are created empty
// (binary and relay logs start afresh: the manager resets them when it makes the server
// replicate). What mariadb-backup --copy-back does, which refuses a datadir holding .system.
func (l Layout) placeRestored(stage, dst string) error {
	sys := filepath.Join(dst, ".system")
	for _, d := range []string{"tmp", "repl", "logs", "aria", "innodb/undo", "innodb/redo"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o750); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		target := filepath.Join(dst, n)
		switch {
		case n == ".system":
			continue // the donor's logs: not this server's
		case strings.HasPrefix(n, "ib_logfile"):
			target = filepath.Join(sys, "innodb", "redo", n)
		case strings.HasPrefix(n, "undo") && !e.IsDir():
			target = filepath.Join(sys, "innodb", "undo", n)
		case strings.HasPrefix(n, "aria_log"):
			target = filepath.Join(sys, "aria", n)
		}
		if err := os.Rename(filepath.Join(stage, n), target); err != nil {
			return err
		}
	}
	return nil
}

// backupPhysical streams a physical backup to the manager's receiver.
func (a *Agent) backupPhysical(ctx context.Context, r jobRow) (string, error) {
	bin, err := backup.FindTool("", "mariadb-backup", "mariadb-backup", "mariabackup")
	if err != nil {
		return "", err
	}
	cnf, cleanup, err := a.l.clientCnf()
	if err != nil {
		return "", err
	}
	defer cleanup()
	scratch, err := os.MkdirTemp(filepath.Join(a.l.Root, "tmp"), "backup-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ipv6.Unbracket(r.server), strconv.Itoa(r.port)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	cmd := exec.CommandContext(ctx, bin, "--defaults-file="+cnf, "--backup", "--stream=xbstream", "--target-dir="+scratch)
	cmd.Stdout = conn
	var stderr strings.Builder
	cmd.Stderr = &limitWriter{w: &stderr, left: 64 << 10}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mariadb-backup: %v: %s", err, tail(stderr.String(), 5))
	}
	return "backup streamed", nil
}

// sendLog streams a log file to server:port and empties it.
func (a *Agent) sendLog(ctx context.Context, r jobRow, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ipv6.Unbracket(r.server), strconv.Itoa(r.port)))
	if err != nil {
		return "", err
	}
	n, err := io.Copy(conn, f)
	conn.Close()
	if err != nil {
		return "", err
	}
	if err := os.Truncate(path, 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes sent", n), nil
}

func optimize(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' "+
		"AND TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys')")
	if err != nil {
		return "", err
	}
	var names []string
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err == nil {
			names = append(names, "`"+strings.ReplaceAll(s, "`", "``")+"`.`"+strings.ReplaceAll(t, "`", "``")+"`")
		}
	}
	rows.Close()
	for _, n := range names {
		r, err := db.QueryContext(ctx, "OPTIMIZE NO_WRITE_TO_BINLOG TABLE "+n)
		if err != nil {
			return "", err
		}
		r.Close()
	}
	return fmt.Sprintf("%d tables optimized", len(names)), nil
}

// clientCnf writes a private option file (0600, removed by cleanup) for the MariaDB tools:
// the bundle's my.cnf (the server's paths) and dbjob.cnf's login, never on a command line.
func (l Layout) clientCnf() (string, func(), error) {
	user, pw, socket, err := clientOptions(l.DBJobCnf())
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(filepath.Join(l.Root, "tmp"), "job-*.cnf")
	if err != nil {
		return "", nil, err
	}
	login := "user = " + quoteOption(user) + "\npassword = " + quoteOption(pw) + "\nsocket = " + socket + "\n"
	body := "!include " + l.MyCnf() + "\n[client]\n" + login + "[mariadb-backup]\n" + login
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, err
	}
	f.Close()
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}

func quoteOption(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.left > 0 {
		q := p
		if len(q) > l.left {
			q = q[:l.left]
		}
		l.w.Write(q)
		l.left -= len(q)
	}
	return n, nil
}
