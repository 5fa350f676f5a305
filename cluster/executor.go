package cluster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/router"
)

// ExecConfig are the settings the executor needs, from the cluster's configuration.
type ExecConfig struct {
	Cluster          string
	ReplUser         string // replication-credential
	ReplPassword     string
	ReplSSL          bool          // replication-use-ssl
	HeartbeatPeriod  time.Duration // force-slave-heartbeat-time
	ConnectRetry     time.Duration // force-slave-heartbeat-retry
	ReadOnlyReplicas bool          // failover-readonly-state
	IgnoredReadOnly  map[ipv6.HostPort]bool

	WaitKill       time.Duration // switchover-wait-kill: grace for running writes after read_only
	WaitTrx        time.Duration // switchover-wait-trx: bound for the read lock and the catch-up
	WaitWriteQuery time.Duration // switchover-wait-write-query: writes running longer cancel a switchover
	SlaveWaitCatch bool          // switchover-slave-wait-catch
	CatchUpTimeout time.Duration // failover: bound for the candidate to apply its relay log
	StepTimeout    time.Duration // bound of any single SQL step
	ScriptTimeout  time.Duration

	StateDir string // crash records go to <StateDir>/<cluster>/failover.<time>.json
	KeepLogs int    // failover-log-file-keep
}

// StepResult is one executed step.
type StepResult struct {
	Step     Step          `json:"step"`
	Duration time.Duration `json:"durationNs"`
	Error    string        `json:"error,omitempty"`
	Skipped  string        `json:"skipped,omitempty"`
}

// Result is an executed plan.
type Result struct {
	Plan     Plan          `json:"plan"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"durationNs"`
	Steps    []StepResult  `json:"steps"`
	// Promoted is set once the new master accepts writes; WritableAfter is the time from
	// Start to that moment, and RepointedAfter the time until every step ended.
	Promoted       bool          `json:"promoted"`
	PromotionPos   gtid.List     `json:"promotionPos"` // the new master's position when promoted
	WritableAfter  time.Duration `json:"writableAfterNs"`
	RepointedAfter time.Duration `json:"repointedAfterNs"`
	Err            string        `json:"error,omitempty"`
}

// Executor runs plans against the servers. It is thin: the decisions are in the plan.
type Executor struct {
	cfg     ExecConfig
	server  func(ipv6.HostPort) (*mariadb.Server, error)
	routers []router.Router
	events  *eventlog.Log
	log     *logrus.Entry

	// OnPromoted is called as soon as the new master is writable, with its position, so the
	// caller can record it before anything else can fail.
	OnPromoted func(p Plan, pos gtid.List)

	// switchover state between steps
	frozen   *sql.Conn // the old master's session holding FLUSH TABLES WITH READ LOCK
	finalPos gtid.List // the old master's last position once frozen
}

// NewExecutor prepares an executor. server returns a connection handle to a server (the
// monitor's, so its pool is warm).
func NewExecutor(cfg ExecConfig, server func(ipv6.HostPort) (*mariadb.Server, error), routers []router.Router, events *eventlog.Log, log *logrus.Entry) *Executor {
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	if cfg.CatchUpTimeout <= 0 {
		cfg.CatchUpTimeout = 30 * time.Second
	}
	if cfg.WaitTrx <= 0 {
		cfg.WaitTrx = 10 * time.Second
	}
	if cfg.ScriptTimeout <= 0 {
		cfg.ScriptTimeout = 60 * time.Second
	}
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Executor{cfg: cfg, server: server, routers: routers, events: events, log: log}
}

// errAbort stops a plan before the promotion; the executor then undoes what it did.
type errAbort struct{ error }

// Run executes a plan. Before the promotion any error aborts and is rolled back (a frozen
// old master is unfrozen); after it, every remaining step still runs and errors are
// collected, since the new master already takes writes.
func (x *Executor) Run(ctx context.Context, p Plan) Result {
	res := Result{Plan: p, Start: time.Now()}
	if p.Refused != "" {
		res.Err = p.Refused
		return res
	}
	log := x.log.WithFields(logrus.Fields{"kind": p.Kind, "old_master": p.OldMaster.String(), "new_master": p.NewMaster.String()})
	log.Info("starting " + string(p.Kind))
	x.event(eventlog.Event{Kind: string(p.Kind), Server: p.NewMaster.String(),
		Message: fmt.Sprintf("starting %s from %s to %s: %s%s", p.Kind, p.OldMaster, p.NewMaster, p.Election.Reason, p.Election.Excluded())})

	var errs []string
	for i := 0; i < len(p.Steps); i++ {
		st := p.Steps[i]
		if parallel(st.Kind) {
			// Demoting the old master and repointing each replica are independent once the
			// new master is writable: run the whole group at once.
			j := i
			for j < len(p.Steps) && parallel(p.Steps[j].Kind) {
				j++
			}
			for _, sr := range x.runParallel(ctx, p, p.Steps[i:j]) {
				res.Steps = append(res.Steps, sr)
				x.stepEvent(p, sr)
				if sr.Error != "" {
					errs = append(errs, fmt.Sprintf("%s %s: %s", sr.Step.Kind, sr.Step.Server, sr.Error))
				}
			}
			i = j - 1
			continue
		}
		start := time.Now()
		skipped, err := x.step(ctx, p, st)
		sr := StepResult{Step: st, Duration: time.Since(start), Skipped: skipped}
		if err != nil {
			sr.Error = err.Error()
		}
		res.Steps = append(res.Steps, sr)
		x.stepEvent(p, sr)
		if st.Kind == StepPromote && err == nil {
			res.Promoted = true
			res.WritableAfter = time.Since(res.Start)
			res.PromotionPos = x.position(ctx, p.NewMaster)
			if x.OnPromoted != nil {
				x.OnPromoted(p, res.PromotionPos)
			}
		}
		if err == nil {
			continue
		}
		if !res.Promoted {
			var ab errAbort
			if errors.As(err, &ab) || st.Kind == StepPromote || st.Kind == StepWaitCatchUp || st.Kind == StepFreezeOldMaster || st.Kind == StepCheckLongWrites {
				x.rollback(p)
				res.Err = fmt.Sprintf("%s aborted at %s: %v", p.Kind, st.Kind, err)
				break
			}
		}
		errs = append(errs, fmt.Sprintf("%s %s: %v", st.Kind, st.Server, err))
	}
	x.release()
	res.Duration = time.Since(res.Start)
	res.RepointedAfter = res.Duration
	if res.Err == "" && len(errs) > 0 {
		res.Err = strings.Join(errs, "; ")
	}
	fields := logrus.Fields{"duration": res.Duration.Round(time.Millisecond), "writable_after": res.WritableAfter.Round(time.Millisecond)}
	msg := fmt.Sprintf("%s from %s to %s done in %s", p.Kind, p.OldMaster, p.NewMaster, res.Duration.Round(time.Millisecond))
	if res.Err != "" {
		log.WithFields(fields).Error(res.Err)
		msg = fmt.Sprintf("%s from %s to %s: %s", p.Kind, p.OldMaster, p.NewMaster, res.Err)
	} else {
		log.WithFields(fields).Info(string(p.Kind) + " done")
	}
	x.event(eventlog.Event{Kind: string(p.Kind), Server: p.NewMaster.String(), Message: msg, Duration: res.Duration, Error: res.Err})
	return res
}

func parallel(k StepKind) bool { return k == StepDemoteOldMaster || k == StepRepointReplica }

// runParallel runs independent steps at once and returns their results in plan order.
func (x *Executor) runParallel(ctx context.Context, p Plan, steps []Step) []StepResult {
	// Open every handle first: the lookup may add to the caller's connection map, which
	// must not happen from several goroutines.
	for _, st := range steps {
		x.server(st.Server)
	}
	out := make([]StepResult, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Add(1)
		go func(i int, st Step) {
			defer wg.Done()
			start := time.Now()
			skipped, err := x.step(ctx, p, st)
			out[i] = StepResult{Step: st, Duration: time.Since(start), Skipped: skipped}
			if err != nil {
				out[i].Error = err.Error()
			}
		}(i, st)
	}
	wg.Wait()
	return out
}

func (x *Executor) event(e eventlog.Event) {
	if x.events == nil {
		return
	}
	e.Cluster = x.cfg.Cluster
	x.events.Add(e)
}

func (x *Executor) stepEvent(p Plan, sr StepResult) {
	msg := string(sr.Step.Kind)
	if sr.Step.Detail != "" {
		msg += ": " + sr.Step.Detail
	}
	if sr.Skipped != "" {
		msg += " (skipped: " + sr.Skipped + ")"
	}
	server := ""
	if sr.Step.Server.Host != "" {
		server = sr.Step.Server.String()
	}
	x.event(eventlog.Event{Kind: string(p.Kind) + "-step", Server: server, Message: msg, Duration: sr.Duration, Error: sr.Error})
	entry := x.log.WithFields(logrus.Fields{"step": sr.Step.Kind, "server": server, "duration": sr.Duration.Round(time.Microsecond)})
	if sr.Error != "" {
		entry.Warn(sr.Error)
	} else {
		entry.Debug(msg)
	}
}

func (x *Executor) sqlCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, x.cfg.StepTimeout)
}

// step runs one step; it returns a reason when the step had nothing to do.
func (x *Executor) step(ctx context.Context, p Plan, st Step) (string, error) {
	switch st.Kind {
	case StepPreScript, StepPostScript:
		return "", x.script(ctx, p, st.Detail)
	case StepCheckLongWrites:
		return "", x.checkLongWrites(ctx, st.Server)
	case StepFreezeOldMaster:
		return "", x.freeze(ctx, st.Server)
	case StepWaitCatchUp:
		return x.waitCatchUp(ctx, p, st)
	case StepPromote:
		return "", x.promote(ctx, p, st.Server)
	case StepNotifyRouters:
		return x.notifyRouters(ctx, p)
	case StepDemoteOldMaster:
		return "", x.demote(ctx, p, st.Server)
	case StepRepointReplica:
		return x.repoint(ctx, p, st.Server)
	case StepRecordCrash:
		return "", x.record(p)
	}
	return "", fmt.Errorf("unknown step %q", st.Kind)
}

func (x *Executor) script(ctx context.Context, p Plan, path string) error {
	ctx, cancel := context.WithTimeout(ctx, x.cfg.ScriptTimeout)
	defer cancel()
	// Arguments as replication-manager passes them: old host, new host, old port, new port,
	// two MaxScale names (unused here), and the operation.
	cmd := exec.CommandContext(ctx, path, ipv6.Unbracket(p.OldMaster.Host), ipv6.Unbracket(p.NewMaster.Host),
		strconv.Itoa(p.OldMaster.Port), strconv.Itoa(p.NewMaster.Port), "", "", string(p.Kind))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("script %s: %w: %s", path, err, tail(string(out), 500))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// checkLongWrites cancels a switchover while long writes run on the master: freezing it
// would kill them, or wait for them past any reasonable write downtime.
func (x *Executor) checkLongWrites(ctx context.Context, addr ipv6.HostPort) error {
	if x.cfg.WaitWriteQuery <= 0 {
		return nil
	}
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	threads, err := s.Processlist(ctx)
	if err != nil {
		return err
	}
	long := 0
	for _, t := range threads {
		if isClientWrite(t) && t.Time >= x.cfg.WaitWriteQuery {
			long++
		}
	}
	var trx int
	err = s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_started < NOW() - INTERVAL ? SECOND",
		int(x.cfg.WaitWriteQuery.Seconds())).Scan(&trx)
	if err != nil {
		return fmt.Errorf("long transactions on %s: %w", addr, err)
	}
	if long+trx > 0 {
		return errAbort{fmt.Errorf("%d write queries and %d transactions run for more than %s on %s (switchover-wait-write-query)", long, trx, x.cfg.WaitWriteQuery, addr)}
	}
	return nil
}

// isClientWrite reports a client statement that may write (anything but a SELECT).
func isClientWrite(t mariadb.Thread) bool {
	if t.Command != "Query" || t.User == "system user" {
		return false
	}
	q := strings.ToUpper(strings.TrimSpace(t.Info))
	return q != "" && !strings.HasPrefix(q, "SELECT") && !strings.HasPrefix(q, "SHOW") && !strings.Contains(q, "INFORMATION_SCHEMA.PROCESSLIST")
}

// killable reports a connection the freeze must end: every client but replication's own
// and the freezing session.
func killable(t mariadb.Thread, self uint64) bool {
	return t.ID != self && t.User != "system user" && t.User != "event_scheduler" &&
		!strings.HasPrefix(t.Command, "Binlog Dump") && t.Command != "Daemon" && t.Command != "Slave_IO" && t.Command != "Slave_SQL"
}

// freeze stops all writes on the old master: read_only (clients without privilege stop at
// once), a grace of switchover-wait-kill for running writes, then every client connection
// is killed and FLUSH TABLES WITH READ LOCK holds even privileged ones. The old master's
// position is then final.
func (x *Executor) freeze(ctx context.Context, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	sctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	if err := s.SetReadOnly(sctx, true); err != nil {
		return err
	}
	deadline := time.Now().Add(x.cfg.WaitKill)
	for time.Now().Before(deadline) {
		threads, err := s.Processlist(sctx)
		if err != nil {
			return err
		}
		writing := false
		for _, t := range threads {
			writing = writing || isClientWrite(t)
		}
		if !writing {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := s.DB().Conn(sctx)
	if err != nil {
		return fmt.Errorf("session on %s: %w", addr, err)
	}
	if err := killClients(sctx, c, addr); err != nil {
		c.Close()
		return err
	}
	lctx, lcancel := context.WithTimeout(ctx, x.cfg.WaitTrx)
	_, err = c.ExecContext(lctx, "FLUSH TABLES WITH READ LOCK")
	lcancel()
	if err != nil {
		c.Close()
		return errAbort{fmt.Errorf("read lock on %s within switchover-wait-trx %s: %w", addr, x.cfg.WaitTrx, err)}
	}
	var pos string
	if err := c.QueryRowContext(sctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		c.Close()
		return fmt.Errorf("final position of %s: %w", addr, err)
	}
	final, err := gtid.Parse(pos)
	if err != nil {
		c.Close()
		return fmt.Errorf("final position of %s: %w", addr, err)
	}
	x.frozen, x.finalPos = c, final
	return nil
}

// killClients ends every client connection but the session c's own, listing and killing
// through c: a pooled connection could be one of those killed.
func killClients(ctx context.Context, c *sql.Conn, addr ipv6.HostPort) error {
	var self uint64
	if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		return fmt.Errorf("session on %s: %w", addr, err)
	}
	rows, err := c.QueryContext(ctx, "SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST")
	if err != nil {
		return fmt.Errorf("processlist of %s: %w", addr, err)
	}
	var ids []uint64
	for rows.Next() {
		var t mariadb.Thread
		var user, cmd sql.NullString
		if err := rows.Scan(&t.ID, &user, &cmd); err != nil {
			rows.Close()
			return fmt.Errorf("processlist of %s: %w", addr, err)
		}
		t.User, t.Command = user.String, cmd.String
		if killable(t, self) {
			ids = append(ids, t.ID)
		}
	}
	rows.Close()
	for _, id := range ids {
		// KILL CONNECTION takes no placeholder; id is a number read from the server.
		if _, err := c.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil && !strings.Contains(err.Error(), "1094") {
			return fmt.Errorf("kill connection %d on %s: %w", id, addr, err)
		}
	}
	return nil
}

// waitCatchUp makes the candidate apply everything before it is promoted: the old master's
// final position (switchover) or all it received in its relay log (failover).
func (x *Executor) waitCatchUp(ctx context.Context, p Plan, st Step) (string, error) {
	s, err := x.server(st.Server)
	if err != nil {
		return "", err
	}
	target := x.finalPos
	timeout := x.cfg.WaitTrx
	if p.Kind == PlanFailover {
		timeout = x.cfg.CatchUpTimeout
		sctx, cancel := x.sqlCtx(ctx)
		status, err := s.Probe(sctx)
		cancel()
		if err != nil {
			return "", errAbort{err}
		}
		r, ok := status.Replication("")
		if !ok && len(status.Replications) > 0 {
			r, ok = status.Replications[0], true
		}
		if !ok {
			return "", errAbort{fmt.Errorf("%s no longer replicates", st.Server)}
		}
		target = r.GtidIOPos
	}
	if len(target) == 0 {
		return "nothing to wait for", nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout+x.cfg.StepTimeout)
	defer cancel()
	ok, err := s.MasterGTIDWait(wctx, target, timeout)
	if err != nil {
		return "", errAbort{err}
	}
	if !ok {
		return "", errAbort{fmt.Errorf("%s did not apply %s within %s", st.Server, target, timeout)}
	}
	return "", nil
}

// promote makes the candidate the master: its replication channel from the old master is
// stopped and forgotten, and it becomes writable. Idempotent.
func (x *Executor) promote(ctx context.Context, p Plan, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	st, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if !ipv6.SameAddr(src, p.OldMaster) && r.ConnectionName != "" {
			continue // another source of a multi-source replica stays
		}
		if err := s.StopReplica(ctx, r.ConnectionName); err != nil {
			return err
		}
		if err := s.ResetReplicaAll(ctx, r.ConnectionName); err != nil {
			return err
		}
	}
	return s.SetReadOnly(ctx, false)
}

// position reads a server's gtid_current_pos; nil when it cannot.
func (x *Executor) position(ctx context.Context, addr ipv6.HostPort) gtid.List {
	s, err := x.server(addr)
	if err != nil {
		return nil
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	var pos string
	if err := s.DB().QueryRowContext(ctx, "SELECT @@gtid_current_pos").Scan(&pos); err != nil {
		return nil
	}
	l, _ := gtid.Parse(pos)
	return l
}

func (x *Executor) notifyRouters(ctx context.Context, p Plan) (string, error) {
	if len(x.routers) == 0 {
		return "no router configured", nil
	}
	var errs []error
	for _, r := range x.routers {
		rctx, cancel := x.sqlCtx(ctx)
		if err := r.Failover(rctx, p.OldMaster, p.NewMaster); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name(), err))
		}
		cancel()
	}
	return "", errors.Join(errs...)
}

func (x *Executor) changeMaster(to ipv6.HostPort) mariadb.ChangeMasterOptions {
	return mariadb.ChangeMasterOptions{
		Host: to, User: x.cfg.ReplUser, Password: x.cfg.ReplPassword, UseGTID: mariadb.GTIDSlavePos,
		ConnectRetry: x.cfg.ConnectRetry, HeartbeatPeriod: x.cfg.HeartbeatPeriod, SSL: x.cfg.ReplSSL,
	}
}

// demote turns the frozen old master into a replica of the new one: its own GTIDs become
// its replication position, so it continues exactly where it stopped writing.
func (x *Executor) demote(ctx context.Context, p Plan, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	if x.frozen != nil {
		killClients(ctx, x.frozen, addr) // writers that reconnected during the switch
		if _, err := x.frozen.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			return fmt.Errorf("unlock %s: %w", addr, err)
		}
		x.frozen.Close()
		x.frozen = nil
	}
	if err := s.StopAllReplicas(ctx); err != nil {
		return err
	}
	if len(x.finalPos) > 0 {
		if err := s.SetGTIDSlavePos(ctx, x.finalPos); err != nil {
			return err
		}
	}
	if err := s.ChangeMaster(ctx, x.changeMaster(p.NewMaster)); err != nil {
		return err
	}
	if err := s.StartReplica(ctx, ""); err != nil {
		return err
	}
	return s.SetReadOnly(ctx, x.cfg.ReadOnlyReplicas && !x.cfg.IgnoredReadOnly[addr])
}

// repoint moves a replica to the new master. A replica holding transactions the new master
// lacks is left alone: repointing it would fail or diverge silently.
func (x *Executor) repoint(ctx context.Context, p Plan, addr ipv6.HostPort) (string, error) {
	s, err := x.server(addr)
	if err != nil {
		return "", err
	}
	nm, err := x.server(p.NewMaster)
	if err != nil {
		return "", err
	}
	if p.Kind == PlanSwitchover && x.cfg.SlaveWaitCatch && len(x.finalPos) > 0 {
		wctx, cancel := context.WithTimeout(ctx, x.cfg.WaitTrx+x.cfg.StepTimeout)
		ok, err := s.MasterGTIDWait(wctx, x.finalPos, x.cfg.WaitTrx)
		cancel()
		if err != nil || !ok {
			x.log.WithField("server", addr.String()).Warn("replica did not catch up with the old master before repointing")
		}
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	var mine, theirs string
	if err := s.DB().QueryRowContext(ctx, "SELECT @@gtid_current_pos").Scan(&mine); err != nil {
		return "", fmt.Errorf("position of %s: %w", addr, err)
	}
	if err := nm.DB().QueryRowContext(ctx, "SELECT @@gtid_current_pos").Scan(&theirs); err != nil {
		return "", fmt.Errorf("position of %s: %w", p.NewMaster, err)
	}
	mp, err1 := gtid.Parse(mine)
	tp, err2 := gtid.Parse(theirs)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("positions of %s / %s: %v %v", addr, p.NewMaster, err1, err2)
	}
	if !tp.Contains(mp) {
		return "", fmt.Errorf("%s has transactions the new master %s lacks (%s not in %s): not repointed, needs a rejoin or reseed", addr, p.NewMaster, gtid.Errant(mp, tp), tp)
	}
	st, err := s.Probe(ctx)
	if err != nil {
		return "", err
	}
	channel := ""
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if ipv6.SameAddr(src, p.NewMaster) && r.IORunning() && r.SQLRunning() {
			return "already replicating from the new master", s.SetReadOnly(ctx, x.cfg.ReadOnlyReplicas && !x.cfg.IgnoredReadOnly[addr])
		}
		if ipv6.SameAddr(src, p.OldMaster) {
			channel = r.ConnectionName
		}
	}
	if err := s.StopReplica(ctx, channel); err != nil {
		return "", err
	}
	o := x.changeMaster(p.NewMaster)
	o.Channel = channel
	if err := s.ChangeMaster(ctx, o); err != nil {
		return "", err
	}
	if err := s.StartReplica(ctx, channel); err != nil {
		return "", err
	}
	return "", s.SetReadOnly(ctx, x.cfg.ReadOnlyReplicas && !x.cfg.IgnoredReadOnly[addr])
}

// rejoinFormerMaster makes a former master that has not diverged a replica of the master:
// read-only first, then its own position becomes its replication position, so it fetches
// exactly what it missed.
func (x *Executor) rejoinFormerMaster(ctx context.Context, addr, master ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	if err := s.SetReadOnly(ctx, true); err != nil {
		return err
	}
	var pos string
	if err := s.DB().QueryRowContext(ctx, "SELECT @@gtid_current_pos").Scan(&pos); err != nil {
		return fmt.Errorf("position of %s: %w", addr, err)
	}
	own, err := gtid.Parse(pos)
	if err != nil {
		return fmt.Errorf("position of %s: %w", addr, err)
	}
	if err := s.StopAllReplicas(ctx); err != nil {
		return err
	}
	if err := s.SetGTIDSlavePos(ctx, own); err != nil {
		return err
	}
	if err := s.ChangeMaster(ctx, x.changeMaster(master)); err != nil {
		return err
	}
	if err := s.StartReplica(ctx, ""); err != nil {
		return err
	}
	return s.SetReadOnly(ctx, x.cfg.ReadOnlyReplicas && !x.cfg.IgnoredReadOnly[addr])
}

// rollback undoes a switchover that stopped before the promotion: the old master takes
// writes again.
func (x *Executor) rollback(p Plan) {
	if p.Kind != PlanSwitchover {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.cfg.StepTimeout)
	defer cancel()
	if x.frozen != nil {
		x.frozen.ExecContext(ctx, "UNLOCK TABLES")
		x.frozen.Close()
		x.frozen = nil
	}
	if s, err := x.server(p.OldMaster); err == nil {
		if err := s.SetReadOnly(ctx, false); err != nil {
			x.log.WithError(err).Error("rollback: old master stays read-only")
			return
		}
	}
	x.event(eventlog.Event{Kind: string(p.Kind), Server: p.OldMaster.String(), Message: "rolled back: old master writable again"})
}

func (x *Executor) release() {
	if x.frozen != nil {
		x.frozen.Close()
		x.frozen = nil
	}
	x.finalPos = nil
}

// crashRecord is what a failover or switchover leaves on disk for the rejoin of the old
// master and for people.
type crashRecord struct {
	Cluster   string        `json:"cluster"`
	Kind      PlanKind      `json:"kind"`
	Time      time.Time     `json:"time"`
	OldMaster ipv6.HostPort `json:"oldMaster"`
	NewMaster ipv6.HostPort `json:"newMaster"`
	FinalPos  gtid.List     `json:"oldMasterFinalPos,omitempty"`
	Election  Election      `json:"election"`
}

func (x *Executor) record(p Plan) error {
	if x.cfg.StateDir == "" {
		return nil
	}
	dir := filepath.Join(x.cfg.StateDir, x.cfg.Cluster)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("crash record: %w", err)
	}
	now := time.Now().UTC()
	b, err := json.MarshalIndent(crashRecord{Cluster: x.cfg.Cluster, Kind: p.Kind, Time: now, OldMaster: p.OldMaster, NewMaster: p.NewMaster, FinalPos: x.finalPos, Election: p.Election}, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, fmt.Sprintf("%s.%s.json", p.Kind, now.Format("20060102150405.000")))
	if err := os.WriteFile(name, b, 0o640); err != nil {
		return fmt.Errorf("crash record: %w", err)
	}
	if x.cfg.KeepLogs > 0 {
		old, _ := filepath.Glob(filepath.Join(dir, string(p.Kind)+".*.json"))
		sort.Strings(old)
		for len(old) > x.cfg.KeepLogs {
			os.Remove(old[0])
			old = old[1:]
		}
	}
	return nil
}
