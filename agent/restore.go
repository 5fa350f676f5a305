package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/backup"
	"replication-manager-pro/gtid"
)

// Restores: the reseed* and flashback* tasks. Both replace the server's data by a stream the
// manager sends to the row's port. A reseed only replaces the data: the manager that asked
// for it sets the replication position afterwards (this project's manager does). A flashback
// (replication-manager's rejoin of a failed master from a backup: autorejoin-physical-backup,
// autorejoin-logical-backup) also leaves the server at the backup's GTID position, as SlapOS'
// dbjobs does (gtid_slave_pos from the backup, then START SLAVE), with its binary log emptied
// (the transactions the cluster never received go with it) and its replication settings kept:
// replication-manager points it at the new master before the job and only starts the replica
// threads after.
//
// Never a half-restored server: a physical stream is prepared beside the datadir before the
// server stops; a dump is loaded into the live server after a copy of its stopped datadir.
// Whatever fails after the swap (start, position, load) brings the previous data back and
// starts mariadbd on it.

// unsupportedTasks are tasks of the protocol the agent answers with an error at once rather
// than leave the row pending until the manager gives up on it.
var unsupportedTasks = map[string]string{
	"zfssnapback": "not supported: the agent takes no ZFS snapshots of the partition and the datadir is " +
		"not known to be a ZFS dataset (SlapOS' dbjobs does nothing for this task either); rejoin from a " +
		"backup instead (autorejoin-physical-backup or autorejoin-logical-backup)",
	"xtrabackup":          xtrabackupUnsupported,
	"reseedxtrabackup":    xtrabackupUnsupported,
	"flashbackxtrabackup": xtrabackupUnsupported,
}

const xtrabackupUnsupported = "not supported: xtrabackup cannot back up or restore MariaDB 10.1+ data files; " +
	"set backup-physical-type = mariabackup"

// markWaiting tells replication-manager's later protocol that the partition waits for the
// stream (state 2): that version sends a reseed's or flashback's backup only then. Tables
// made before the state column exist simply do not get it.
func markWaiting(ctx context.Context, db *sql.DB, r jobRow) {
	setJobState(ctx, db, r.id, 2, "waiting for the stream")
}

// setJobState sets a row's state (and result when not empty) outside the binary log, when
// the table has the state column (SlapOS' and old replication-manager tables do not).
func setJobState(ctx context.Context, db *sql.DB, id int64, state int, result string) {
	c, err := db.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	if !hasStateColumn(ctx, c) {
		return
	}
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return
	}
	if result != "" {
		c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET state=?, result=? WHERE id=?", state, result, id)
		return
	}
	c.ExecContext(ctx, "UPDATE replication_manager_schema.jobs SET state=? WHERE id=?", state, id)
}

// receiveStream listens on the job row's port, marks the row waiting for the stream (the
// original's state 2) and accepts the manager's connection, for at most five minutes.
func (a *Agent) receiveStream(ctx context.Context, db *sql.DB, r jobRow) (net.Conn, error) {
	l, err := a.listen(r)
	if err != nil {
		return nil, fmt.Errorf("listen for the stream: %w", err)
	}
	defer l.Close()
	markWaiting(ctx, db, r)
	conn, err := accept(ctx, l, 5*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("wait for the stream: %w", err)
	}
	return conn, nil
}

// restorePhysical restores a physical backup the manager streams to the row's port: extracted
// and prepared beside the datadir while mariadbd still runs, then swapped in.
func (a *Agent) restorePhysical(ctx context.Context, db *sql.DB, r jobRow, flashback bool) (string, error) {
	conn, err := a.receiveStream(ctx, db, r)
	if err != nil {
		return "", err
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	stage := filepath.Join(filepath.Dir(a.l.DataDir()), "restore-"+stamp) // same file system as the datadir
	defer os.RemoveAll(stage)
	pos, err := backup.RestorePhysical(ctx, conn, stage, backup.PrepareOptions{TmpDir: filepath.Join(a.l.Root, "tmp")})
	conn.Close()
	if err != nil {
		return "", err
	}
	var at gtid.List
	if flashback {
		// Checked before the server is touched: a flashback is worth nothing without it.
		if at, err = gtid.Parse(pos); err != nil || len(at) == 0 {
			return "", fmt.Errorf("the backup's position %q is not a GTID position (%v): the server could not rejoin at it", pos, err)
		}
	}
	fresh := a.l.DataDir() + ".new-" + stamp
	defer os.RemoveAll(fresh)
	if err := a.l.placeRestored(stage, fresh); err != nil {
		return "", err
	}
	if _, err := a.sup.ask(ctx, "stop", r.task); err != nil {
		return "", fmt.Errorf("stop mariadbd: %w", err)
	}
	old := a.l.DataDir() + ".old-" + stamp
	if err := os.Rename(a.l.DataDir(), old); err != nil {
		a.sup.ask(ctx, "start", r.task+" failed")
		return "", fmt.Errorf("set the datadir aside: %w", err)
	}
	var carry []string
	if flashback {
		carry = replicationInfo(old)
	}
	// The error logs stay with the partition.
	moveLogs(old, fresh)
	if err := os.Rename(fresh, a.l.DataDir()); err != nil {
		moveLogs(fresh, old)
		os.Rename(old, a.l.DataDir())
		a.sup.ask(ctx, "start", r.task+" failed")
		return "", fmt.Errorf("put the restored datadir in place: %w", err)
	}
	if _, err := a.sup.ask(ctx, "start", r.task); err != nil {
		return "", a.swapBack(ctx, old, stamp, fmt.Errorf("mariadbd did not start on the restored data: %w", err))
	}
	if err := a.serves(ctx); err != nil {
		return "", a.swapBack(ctx, old, stamp, fmt.Errorf("mariadbd started on the restored data but does not serve the partition's login: %w", err))
	}
	if !flashback {
		os.RemoveAll(old)
		return "reseeded at " + pos, nil
	}
	note, err := a.rejoinAt(ctx, at, old, carry)
	if err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	os.RemoveAll(old)
	return "flashback at " + at.String() + note, nil
}

// serves checks that the running server answers a query under dbjob.cnf's login: mariadbd
// listens on TCP (what the supervisor watches) before its socket exists and before it has
// found out whether its system tables are usable.
func (a *Agent) serves(ctx context.Context) error {
	db, err := a.l.openLocal()
	if err != nil {
		return err
	}
	defer db.Close()
	var last error
	for i := 0; i < 5; i++ {
		var one int
		if last = db.QueryRowContext(ctx, "SELECT 1").Scan(&one); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return last
}

// replicationInfo lists the replica settings files in a datadir (master.info, one
// master-<connection>.info per named connection, multi-master.info): the settings belong to
// the server, not to its data. The relay log positions are not kept: the relay logs start
// afresh.
func replicationInfo(datadir string) []string {
	var out []string
	ents, _ := os.ReadDir(datadir)
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (n == "master.info" || n == "multi-master.info" || strings.HasPrefix(n, "master-") && strings.HasSuffix(n, ".info")) {
			out = append(out, n)
		}
	}
	return out
}

// moveLogs moves the .system/logs directory of one datadir to another.
func moveLogs(from, to string) {
	dst := filepath.Join(to, ".system", "logs")
	os.RemoveAll(dst)
	os.Rename(filepath.Join(from, ".system", "logs"), dst)
}

// rejoinAt leaves the freshly restored, running server at position at: gtid_slave_pos set
// (verified), then, when the previous data had replica settings, those settings back (a
// restart: they are read at start) and the replica threads started.
func (a *Agent) rejoinAt(ctx context.Context, at gtid.List, old string, carry []string) (string, error) {
	if err := a.setSlavePos(ctx, at, false); err != nil {
		return "", err
	}
	if len(carry) == 0 {
		return "", nil
	}
	if _, err := a.sup.ask(ctx, "stop", "flashback: replica settings"); err != nil {
		return "", fmt.Errorf("stop mariadbd: %w", err)
	}
	for _, n := range carry {
		if err := copyFile(filepath.Join(old, n), filepath.Join(a.l.DataDir(), n)); err != nil {
			return "", fmt.Errorf("replica settings %s: %w", n, err)
		}
	}
	if _, err := a.sup.ask(ctx, "start", "flashback: replica settings"); err != nil {
		return "", fmt.Errorf("mariadbd did not start with the replica settings back: %w", err)
	}
	if err := a.serves(ctx); err != nil {
		return "", fmt.Errorf("mariadbd started with the replica settings back but does not serve the partition's login: %w", err)
	}
	return a.startReplicas(ctx), nil
}

// setSlavePos sets gtid_slave_pos (outside the binary log) and checks it took; resetBinlog
// first empties the binary log, whose GTIDs would otherwise still count in the server's
// position.
func (a *Agent) setSlavePos(ctx context.Context, at gtid.List, resetBinlog bool) error {
	c, done, err := a.l.localConn(ctx)
	if err != nil {
		return fmt.Errorf("connect to set the position: %w", err)
	}
	defer done()
	stmts := []string{"SET SESSION sql_log_bin=0", "STOP ALL SLAVES"}
	if resetBinlog {
		stmts = append(stmts, "RESET MASTER")
	}
	// at was parsed: digits, dashes and commas only, safe between quotes.
	stmts = append(stmts, "SET GLOBAL gtid_slave_pos='"+at.String()+"'")
	for _, q := range stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(q, "=", 2)[0], err)
		}
	}
	var got string
	if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_slave_pos").Scan(&got); err != nil {
		return fmt.Errorf("read gtid_slave_pos: %w", err)
	}
	if g, err := gtid.Parse(got); err != nil || g.String() != at.String() {
		return fmt.Errorf("gtid_slave_pos is %q after setting it to %q", got, at.String())
	}
	return nil
}

// startReplicas starts the configured replica threads. Its failure does not undo the
// restore (the data and position are right; the manager repoints the server), it is
// reported in the result.
func (a *Agent) startReplicas(ctx context.Context) string {
	db, err := a.l.openLocal()
	if err != nil {
		return "; replication not started: " + err.Error()
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "START ALL SLAVES"); err != nil {
		a.log.WithError(err).Warn("flashback: replication not started")
		return "; replication not started: " + err.Error()
	}
	return "; replication started"
}

// swapBack puts the previous datadir back after a failed restore and starts mariadbd on it.
// The restored data is kept beside it for a look.
func (a *Agent) swapBack(ctx context.Context, old, stamp string, cause error) error {
	// A stop also cancels the supervisor's pending restart of a mariadbd that died.
	a.sup.ask(ctx, "stop", "restore failed")
	dd := a.l.DataDir()
	failed := dd + ".failed-" + stamp
	if err := os.Rename(dd, failed); err != nil {
		return fmt.Errorf("%w; the previous data could not come back (%v): it is in %s", cause, err, old)
	}
	// The error log of the failed attempt stays with the partition.
	moveLogs(failed, old)
	// Only the newest failed attempt is kept: a job retried after each failure must not fill
	// the partition's disk with copies.
	pruneFailed(dd, failed)
	if err := os.Rename(old, dd); err != nil {
		return fmt.Errorf("%w; the previous data could not come back (%v): it is in %s", cause, err, old)
	}
	if _, err := a.sup.ask(ctx, "start", "restore failed"); err != nil {
		return fmt.Errorf("%w; the previous data is back but mariadbd did not start on it: %v", cause, err)
	}
	if err := a.serves(ctx); err != nil {
		return fmt.Errorf("%w; the previous data is back but mariadbd does not serve the partition's login on it: %v", cause, err)
	}
	return fmt.Errorf("%w (the previous data is back and running; the failed restore is kept in %s)", cause, failed)
}

// pruneFailed removes the data directories of earlier failed restores (dd.failed-*) but keep.
// (Not filepath.Glob: a node directory may hold brackets, "[::1]_3306".)
func pruneFailed(dd, keep string) {
	entries, _ := os.ReadDir(filepath.Dir(dd))
	prefix := filepath.Base(dd) + ".failed-"
	for _, e := range entries {
		if p := filepath.Join(filepath.Dir(dd), e.Name()); strings.HasPrefix(e.Name(), prefix) && p != keep {
			os.RemoveAll(p)
		}
	}
}

// dumpPos finds the GTID position a dump states near its start (mariadb-dump --gtid
// --master-data: a SET GLOBAL gtid_slave_pos line, commented out or not).
var dumpPos = regexp.MustCompile(`gtid_slave_pos\s*=\s*'([0-9,\- ]*)'`)

// restoreLogical loads a gzip dump the manager streams to the row's port into the live
// server, after a copy of its stopped datadir that comes back if the load fails.
func (a *Agent) restoreLogical(ctx context.Context, db *sql.DB, r jobRow, flashback bool) (string, error) {
	bin, err := backup.FindTool("", "mariadb-client", "mariadb", "mysql")
	if err != nil {
		return "", err
	}
	conn, err := a.receiveStream(ctx, db, r)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	zr, err := gzip.NewReader(bufio.NewReader(conn))
	if err != nil {
		return "", fmt.Errorf("the stream is not gzip: %w", err)
	}
	sqlIn := bufio.NewReaderSize(zr, 1<<20)
	head, err := sqlIn.Peek(1 << 20)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("the dump: %w", err)
	}
	var at gtid.List
	if m := dumpPos.FindSubmatch(head); m != nil {
		if at, err = gtid.Parse(string(m[1])); err != nil {
			return "", fmt.Errorf("the dump's position %q: %w", m[1], err)
		}
	}
	if flashback && len(at) == 0 {
		// Checked before the server is touched: a flashback is worth nothing without it.
		return "", errors.New("the dump states no GTID position (mariadb-dump --gtid --master-data): the server could not rejoin at it")
	}
	cnf, cleanup, err := a.l.clientCnf()
	if err != nil {
		return "", err
	}
	defer cleanup()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	old, err := a.safetyCopy(ctx, r.task, stamp)
	if err != nil {
		return "", err
	}
	replicas, err := a.stopReplicas(ctx)
	if err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	// The server holds what the dump holds, not also databases made since (a flashback's
	// diverged writes): a dump recreates only its own.
	if err := a.dropUserDatabases(ctx); err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	if err := load(ctx, bin, cnf, sqlIn); err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	// The dump's accounts (mysql.*) take effect now, not at the next restart: a dump that
	// locks the partition's login out is found here, while its copy can still come back.
	if err := a.flushPrivileges(ctx); err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	if err := a.serves(ctx); err != nil {
		return "", a.swapBack(ctx, old, stamp, fmt.Errorf("the partition's login does not work on the loaded data: %w", err))
	}
	if !flashback {
		os.RemoveAll(old)
		if len(at) > 0 {
			return "loaded at " + at.String(), nil
		}
		return "loaded", nil
	}
	if err := a.setSlavePos(ctx, at, true); err != nil {
		return "", a.swapBack(ctx, old, stamp, err)
	}
	note := ""
	if replicas {
		note = a.startReplicas(ctx)
	}
	os.RemoveAll(old)
	return "flashback at " + at.String() + note, nil
}

// dumpDone ends every dump mariadb-dump completed.
var dumpDone = []byte("-- Dump completed")

// load feeds a dump to the mariadb client outside the binary log. A dump that breaks (gzip
// checksum, truncation) or does not end as a completed dump does is an error, and the client
// is killed before it reads the end of its input (which would commit what it has).
func load(ctx context.Context, bin, cnf string, dump io.Reader) error {
	cmd := exec.CommandContext(ctx, bin, "--defaults-file="+cnf, "--init-command=SET SESSION sql_log_bin=0")
	var out strings.Builder
	cmd.Stdout = io.Discard
	cmd.Stderr = &limitWriter{w: &out, left: 64 << 10}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("load: start %s: %w", bin, err)
	}
	end := &tailKeeper{}
	_, cerr := io.Copy(in, io.TeeReader(dump, end))
	if cerr == nil && !bytes.Contains(end.b, dumpDone) {
		cerr = fmt.Errorf("the dump is not complete (no %q at its end)", dumpDone)
	}
	if cerr != nil {
		cmd.Process.Kill()
		in.Close()
		cmd.Wait()
		// A client that stopped at an SQL error breaks the pipe: its own message says more.
		return fmt.Errorf("load: %v: %s", cerr, tail(out.String(), 5))
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("load: %v: %s", err, tail(out.String(), 5))
	}
	return nil
}

// tailKeeper keeps the last bytes written to it.
type tailKeeper struct{ b []byte }

func (t *tailKeeper) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 1024 {
		t.b = append(t.b[:0], t.b[len(t.b)-1024:]...)
	}
	return len(p), nil
}

// safetyCopy copies the stopped datadir to <datadir>.old-<stamp> and starts mariadbd again:
// what a failed load comes back to.
func (a *Agent) safetyCopy(ctx context.Context, task, stamp string) (string, error) {
	if _, err := a.sup.ask(ctx, "stop", task+": safety copy"); err != nil {
		return "", fmt.Errorf("stop mariadbd: %w", err)
	}
	dd := a.l.DataDir()
	old := dd + ".old-" + stamp
	cp := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", dd, old)
	out, err := cp.CombinedOutput()
	if err != nil {
		os.RemoveAll(old)
		a.sup.ask(ctx, "start", task+" failed")
		return "", fmt.Errorf("safety copy of %s: %v: %s", dd, err, tail(string(out), 3))
	}
	if _, err := a.sup.ask(ctx, "start", task); err != nil {
		os.RemoveAll(old) // the data was not touched
		return "", fmt.Errorf("mariadbd did not start again after the safety copy: %w", err)
	}
	if err := a.serves(ctx); err != nil {
		os.RemoveAll(old)
		return "", fmt.Errorf("mariadbd does not serve the partition's login after the safety copy: %w", err)
	}
	return old, nil
}

// stopReplicas stops the replica threads before a load (a replica applying events meanwhile
// would mix them with the dump's) and tells whether any replication is configured.
func (a *Agent) stopReplicas(ctx context.Context) (bool, error) {
	db, err := a.l.openLocal()
	if err != nil {
		return false, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "STOP ALL SLAVES"); err != nil {
		return false, fmt.Errorf("STOP ALL SLAVES: %w", err)
	}
	rows, err := db.QueryContext(ctx, "SHOW ALL SLAVES STATUS")
	if err != nil {
		return false, fmt.Errorf("SHOW ALL SLAVES STATUS: %w", err)
	}
	defer rows.Close()
	return rows.Next(), rows.Err()
}

func (a *Agent) flushPrivileges(ctx context.Context) error {
	db, err := a.l.openLocal()
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "FLUSH NO_WRITE_TO_BINLOG PRIVILEGES"); err != nil {
		return fmt.Errorf("FLUSH PRIVILEGES: %w", err)
	}
	return nil
}

// dropUserDatabases drops every database outside MariaDB's own, outside the binary log.
func (a *Agent) dropUserDatabases(ctx context.Context) error {
	c, done, err := a.l.localConn(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return err
	}
	rows, err := c.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "+
		"WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')")
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if _, err := c.ExecContext(ctx, "DROP DATABASE `"+strings.ReplaceAll(n, "`", "``")+"`"); err != nil {
			return fmt.Errorf("drop database %s: %w", n, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
