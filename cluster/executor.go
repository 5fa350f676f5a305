package cluster

import (
	"context"
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
	Channel          string // replication-source-name: the connection a bootstrap creates

	WaitKill       time.Duration // switchover-wait-kill: grace for running writes after read_only
	WaitTrx        time.Duration // switchover-wait-trx: bound for the read lock and the catch-up
	WaitWriteQuery time.Duration // switchover-wait-write-query: writes running longer cancel a switchover
	SlaveWaitCatch bool          // switchover-slave-wait-catch
	CatchUpTimeout time.Duration // failover: bound for the candidate to apply its relay log
	StepTimeout    time.Duration // bound of any single SQL step
	ScriptTimeout  time.Duration

	StateDir string // crash records go to <StateDir>/<cluster>/failover.<time>.json
	KeepLogs int    // failover-log-file-keep

	// CrashAfterStep, for crash tests only, ends this process at once (no deferred call, no
	// clean-up, as a kill -9 would) once the k-th step of a plan is journaled done: the
	// state a manager dying there leaves. 0 = never.
	CrashAfterStep int
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
	RolledBack     bool          `json:"rolledBack,omitempty"`
	// Stopped: the manager lost the cluster's leadership during the plan and stopped before
	// a step; the plan stays in the journal for the next leader.
	Stopped bool `json:"stopped,omitempty"`
	// Lost lists the transactions the dead master was last seen holding that the new master
	// lacks once promoted (failover): acknowledged writes an asynchronous replica never
	// received. The old master may hold more written after the manager's last probe; its
	// return is then reported as FormerMasterDiverged.
	Lost gtid.List `json:"lost,omitempty"`
	Err  string    `json:"error,omitempty"`
}

// RunState is what a plan learns while it runs and later steps need: the old master's
// final position once frozen, the bootstrap master's position. It is journaled with the
// plan, so a restarted manager resumes with the same values.
type RunState struct {
	FinalPos  gtid.List `json:"finalPos,omitempty"`
	SourcePos gtid.List `json:"sourcePos,omitempty"`
	SeedPos   gtid.List `json:"seedPos,omitempty"` // a reseed's data position (cluster/reseed.go)
}

// Executor runs plans against the servers. It is thin: the decisions are in the plan, the
// SQL in package mariadb.
type Executor struct {
	cfg     ExecConfig
	server  func(ipv6.HostPort) (*mariadb.Server, error)
	routers []router.Router
	observe func(ActionEvent)
	log     *logrus.Entry

	// OnPromoted is called as soon as the new master is writable, with its position, so the
	// caller can record it before anything else can fail.
	OnPromoted func(p Plan, pos gtid.List)
	// Journal, when set, records the plan's progress before and after each step.
	Journal *Journal
	// ArmFence queues read_only on the old master through a connection held to it (the
	// fence-old-master step); nil when the caller holds none.
	ArmFence func(ctx context.Context, addr ipv6.HostPort) (string, error)
	seeding  *SeedConfig // the data side of reseed plans (cluster/reseed.go)
	// Guard, with several managers, checks before each step (each parallel group) that this
	// manager still leads the cluster and records the step; an error stops the plan there,
	// without rolling anything back: the next leader finishes it from the journal.
	Guard func(ctx context.Context, what string) error

	mu     sync.Mutex // guards state and journal writes from parallel steps
	state  RunState
	frozen *mariadb.Session // the old master's session holding the read lock
	done   int              // steps journaled done, for CrashAfterStep
	// early holds the IO-thread stops a failover's promotion starts on the replicas to
	// repoint (stopEarly), closed when each ends.
	early map[ipv6.HostPort]chan struct{}
}

// NewExecutor prepares an executor. server returns a connection handle to a server (the
// monitor's, so its pool is warm); observe receives the typed observations of every plan.
func NewExecutor(cfg ExecConfig, server func(ipv6.HostPort) (*mariadb.Server, error), routers []router.Router, observe func(ActionEvent), log *logrus.Entry) *Executor {
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
	if observe == nil {
		observe = func(ActionEvent) {}
	}
	return &Executor{cfg: cfg, server: server, routers: routers, observe: observe, log: log}
}

// CrashExitCode is the exit status of a manager stopped by CrashAfterStep.
const CrashExitCode = 86

// errAbort stops a plan before the promotion; the executor then undoes what it did.
type errAbort struct{ error }

// Run executes a plan. Before the promotion any error aborts and is rolled back (a frozen
// old master is unfrozen); after it, every remaining step still runs and errors are
// collected, since the new master already takes writes.
func (x *Executor) Run(ctx context.Context, p Plan) Result {
	return x.run(ctx, p, nil, RunState{}, false)
}

// Resume runs the steps of a journaled plan that were not done, with the state the plan
// had learnt.
func (x *Executor) Resume(ctx context.Context, p Plan, done map[int]bool, st RunState) Result {
	return x.run(ctx, p, done, st, true)
}

func (x *Executor) run(ctx context.Context, p Plan, done map[int]bool, state RunState, resumed bool) Result {
	res := Result{Plan: p, Start: time.Now()}
	if p.Refused != "" {
		res.Err = p.Refused
		return res
	}
	x.state = state
	defer x.waitAllEarly()
	log := x.log.WithFields(logrus.Fields{"kind": p.Kind, "origin": p.Origin, "old_master": p.OldMaster.String(), "new_master": p.NewMaster.String()})
	log.Info("starting " + string(p.Kind))
	if !resumed {
		x.Journal.begin(p, x.state)
	}
	x.observe(ActionEvent{Kind: ObsPlanStarted, Plan: p.Kind, Origin: p.Origin, Server: p.NewMaster.String(), Message: describeStart(p)})

	var errs []string
	for i := 0; i < len(p.Steps); i++ {
		if done[i] {
			continue
		}
		if err := x.guard(ctx, p, i); err != nil {
			res.Err = fmt.Sprintf("%s stopped before step %d (%s): %v", p.Kind, i+1, p.Steps[i].Kind, err)
			res.Stopped = true
			break
		}
		if parallel(p.Steps[i].Kind) {
			// Demoting the old master and repointing each replica are independent once the
			// new master is writable: run the whole group at once.
			j := i
			for j < len(p.Steps) && parallel(p.Steps[j].Kind) {
				j++
			}
			for _, sr := range x.runParallel(ctx, p, i, j, done) {
				res.Steps = append(res.Steps, sr)
				if sr.Error != "" {
					errs = append(errs, fmt.Sprintf("%s %s: %s", sr.Step.Kind, sr.Step.Server, sr.Error))
				}
			}
			i = j - 1
			continue
		}
		st := p.Steps[i]
		sr, err := x.runStep(ctx, p, i)
		res.Steps = append(res.Steps, sr)
		if st.Kind == StepPromote && err == nil {
			res.Promoted = true
			res.WritableAfter = time.Since(res.Start)
			res.PromotionPos = x.position(ctx, p.NewMaster)
			if p.Kind == PlanFailover && len(p.OldMasterPos) > 0 && res.PromotionPos != nil {
				if lost := gtid.Errant(p.OldMasterPos, res.PromotionPos); len(lost) > 0 {
					res.Lost = lost
					x.observe(ActionEvent{Kind: ObsDataLoss, Plan: p.Kind, Origin: p.Origin, Server: p.OldMaster.String(),
						Message: fmt.Sprintf("transactions lost: the old master %s was last seen holding %s, not on the new master %s (%s)", p.OldMaster, lost, p.NewMaster, res.PromotionPos)})
				}
			}
			if x.OnPromoted != nil {
				x.OnPromoted(p, res.PromotionPos)
			}
			x.Journal.promoted()
		}
		x.stepDone(i)
		if err == nil {
			continue
		}
		if !res.Promoted && abortsPlan(st.Kind, err) {
			res.RolledBack = x.rollback(p)
			res.Err = fmt.Sprintf("%s aborted at %s: %v", p.Kind, st.Kind, err)
			break
		}
		errs = append(errs, fmt.Sprintf("%s %s: %v", st.Kind, st.Server, err))
	}
	x.release()
	res.Duration = time.Since(res.Start)
	res.RepointedAfter = res.Duration
	if res.Err == "" && len(errs) > 0 {
		res.Err = strings.Join(errs, "; ")
	}
	if !res.Stopped {
		x.Journal.end() // a stopped plan stays journaled for the next leader
	}
	fields := logrus.Fields{"duration": res.Duration.Round(time.Millisecond), "writable_after": res.WritableAfter.Round(time.Millisecond)}
	msg := fmt.Sprintf("%s from %s to %s done in %s", p.Kind, p.OldMaster, p.NewMaster, res.Duration.Round(time.Millisecond))
	if res.Err != "" {
		log.WithFields(fields).Error(res.Err)
		msg = fmt.Sprintf("%s from %s to %s: %s", p.Kind, p.OldMaster, p.NewMaster, res.Err)
	} else {
		log.WithFields(fields).Info(string(p.Kind) + " done")
	}
	x.observe(ActionEvent{Kind: ObsPlanDone, Plan: p.Kind, Origin: p.Origin, Server: p.NewMaster.String(), Message: msg,
		Duration: res.Duration, Error: res.Err, Promoted: res.Promoted, RolledBack: res.RolledBack})
	return res
}

// guard asks the cluster's leadership (several managers) whether step i may run.
func (x *Executor) guard(ctx context.Context, p Plan, i int) error {
	if x.Guard == nil {
		return nil
	}
	st := p.Steps[i]
	what := fmt.Sprintf("%s step %d/%d %s", p.Kind, i+1, len(p.Steps), st.Kind)
	if st.Server.Host != "" {
		what += " " + st.Server.String()
	}
	return x.Guard(ctx, what)
}

// abortsPlan says whether a failed step before the promotion stops the plan (and rolls
// it back): every step that prepares the promotion does.
func abortsPlan(k StepKind, err error) bool {
	var ab errAbort
	if errors.As(err, &ab) {
		return true
	}
	switch k {
	case StepPromote, StepWaitCatchUp, StepFreezeOldMaster, StepCheckLongWrites, StepOpenMaster:
		return true
	}
	return false
}

func describeStart(p Plan) string {
	switch p.Kind {
	case PlanFailover, PlanSwitchover:
		return fmt.Sprintf("starting %s from %s to %s: %s%s", p.Kind, p.OldMaster, p.NewMaster, p.Election.Reason, p.Election.Excluded())
	case PlanRelay:
		return fmt.Sprintf("starting relay recovery: the replicas of dead relay %s move to %s (%d steps)", p.OldMaster, p.NewMaster, len(p.Steps))
	}
	return fmt.Sprintf("starting %s (%d steps)", p.Kind, len(p.Steps))
}

func parallel(k StepKind) bool {
	return k == StepDemoteOldMaster || k == StepRepointReplica || k == StepReplicateFrom || k == StepResetReplication
}

// runStep runs step i, journaled before and observed after.
func (x *Executor) runStep(ctx context.Context, p Plan, i int) (StepResult, error) {
	st := p.Steps[i]
	x.Journal.stepStarted(i)
	start := time.Now()
	skipped, err := x.step(ctx, p, st)
	sr := StepResult{Step: st, Duration: time.Since(start), Skipped: skipped}
	if err != nil {
		sr.Error = err.Error()
	}
	x.stepObserved(p, sr)
	return sr, err
}

// stepDone journals step i done and, in crash tests, dies there.
func (x *Executor) stepDone(i int) {
	x.mu.Lock()
	x.Journal.stepDone(i, x.state)
	x.done++
	crash := x.cfg.CrashAfterStep > 0 && x.done == x.cfg.CrashAfterStep
	x.mu.Unlock()
	if crash {
		x.log.WithField("step", i).Warn("crash test: killing the manager after this step")
		os.Exit(CrashExitCode)
	}
}

func (x *Executor) setState(f func(*RunState)) {
	x.mu.Lock()
	f(&x.state)
	x.mu.Unlock()
}

func (x *Executor) getState() RunState {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.state
}

// runParallel runs steps [from, to) at once and returns their results in plan order.
func (x *Executor) runParallel(ctx context.Context, p Plan, from, to int, done map[int]bool) []StepResult {
	// Open every handle first: the lookup may add to the caller's connection map, which
	// must not happen from several goroutines.
	for _, st := range p.Steps[from:to] {
		x.server(st.Server)
	}
	out := make([]StepResult, to-from)
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		if done[i] {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i-from], _ = x.runStep(ctx, p, i)
			x.stepDone(i)
		}(i)
	}
	wg.Wait()
	var kept []StepResult
	for i, sr := range out {
		if !done[from+i] {
			kept = append(kept, sr)
		}
	}
	return kept
}

func (x *Executor) stepObserved(p Plan, sr StepResult) {
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
	x.observe(ActionEvent{Kind: ObsStepDone, Plan: p.Kind, Origin: p.Origin, Step: sr.Step.Kind, Server: server, Message: msg, Duration: sr.Duration, Error: sr.Error})
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
	case StepFenceOldMaster:
		if x.ArmFence == nil {
			return "no connection held to the old master", nil
		}
		return x.ArmFence(ctx, st.Server)
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
	case StepRejoin:
		return x.rejoin(ctx, st.Server, p.NewMaster)
	case StepOpenMaster:
		return "", x.openMaster(ctx, st.Server)
	case StepReplicateFrom:
		return x.replicateFrom(ctx, st.Server, p.NewMaster)
	case StepResetReplication:
		return "", x.resetReplication(ctx, st)
	case StepRecordCrash:
		return "", x.record(p)
	}
	if isSeedStep(st.Kind) {
		return x.seedStep(ctx, p, st)
	}
	if isReplicaControlStep(st.Kind) {
		return x.replicaControlStep(ctx, st)
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
	long, trx, err := s.LongWrites(ctx, x.cfg.WaitWriteQuery)
	if err != nil {
		return err
	}
	if long+trx > 0 {
		return errAbort{fmt.Errorf("%d write queries and %d transactions run for more than %s on %s (switchover-wait-write-query)", long, trx, x.cfg.WaitWriteQuery, addr)}
	}
	return nil
}

// freeze stops all writes on the old master: read_only (clients without privilege stop at
// once), a grace of switchover-wait-kill for running writes, then every client connection
// is killed and a read lock on a pinned session holds even privileged ones. The old
// master's position is then final.
func (x *Executor) freeze(ctx context.Context, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	pctx, pcancel := x.sqlCtx(ctx)
	sess, err := s.PinSession(pctx)
	pcancel()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(x.cfg.WaitKill)
	if err := x.readOnlyOnFreeze(ctx, sess, addr); err != nil {
		sess.Close()
		return err
	}
	sctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	for ; time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		writing, err := s.ClientWritesRunning(sctx)
		if err != nil {
			sess.Close()
			return err
		}
		if !writing {
			break
		}
	}
	if err := sess.KillClients(sctx); err != nil {
		sess.Close()
		return err
	}
	lctx, lcancel := context.WithTimeout(ctx, x.cfg.WaitTrx)
	err = sess.ReadLock(lctx)
	lcancel()
	if err != nil {
		sess.Close()
		return errAbort{fmt.Errorf("within switchover-wait-trx %s: %w", x.cfg.WaitTrx, err)}
	}
	final, err := sess.BinlogGTIDPos(sctx)
	if err != nil {
		sess.Close()
		return err
	}
	x.frozen = sess
	x.setState(func(st *RunState) { st.FinalPos = final })
	return nil
}

// readOnlyOnFreeze sets read_only on the old master within switchover-wait-kill. Setting it
// waits for every running write statement; one waiting for a row lock that an open
// transaction holds would hold it, and every write behind it, until innodb_lock_wait_timeout
// (50 s by default). Past the grace, the clients are ended first (their transactions roll
// back; none got an OK) and read_only is set then.
func (x *Executor) readOnlyOnFreeze(ctx context.Context, sess *mariadb.Session, addr ipv6.HostPort) error {
	rctx, cancel := context.WithTimeout(ctx, x.cfg.WaitKill+x.cfg.StepTimeout)
	defer cancel()
	err := sess.SetReadOnlyWithin(rctx, x.cfg.WaitKill)
	if !errors.Is(err, mariadb.ErrLockWait) {
		return err
	}
	x.log.WithField("server", addr.String()).Warn("read_only waited past switchover-wait-kill for writes held by row locks: ending the clients first")
	if err := sess.KillClients(rctx); err != nil {
		return err
	}
	return sess.SetReadOnlyWithin(rctx, x.cfg.StepTimeout/2)
}

// waitCatchUp makes the candidate apply everything before it is promoted: the old master's
// final position (switchover) or all it received in its relay log (failover).
func (x *Executor) waitCatchUp(ctx context.Context, p Plan, st Step) (string, error) {
	s, err := x.server(st.Server)
	if err != nil {
		return "", err
	}
	target := x.getState().FinalPos
	timeout := x.cfg.WaitTrx
	if p.Kind == PlanRelay {
		target = st.Position // what the dead relay's replicas hold
	}
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
		// The relays above it applied what they received (their own steps ran first): it
		// reaches the candidate through them.
		for _, u := range st.Upstream {
			target = maxPos(target, x.position(ctx, u))
		}
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
func (x *Executor) promote(outer context.Context, p Plan, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(outer)
	defer cancel()
	st, err := s.Probe(ctx)
	if err != nil {
		return err
	}
	var channels []string
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if !ipv6.SameAddr(src, p.OldMaster) && r.ConnectionName != "" {
			continue // another source of a multi-source replica stays
		}
		channels = append(channels, r.ConnectionName)
	}
	if p.Kind == PlanFailover {
		if err := s.PrepareStopFromDeadSource(ctx); err != nil {
			x.log.WithError(err).Warn("semi-sync kill timeout not lowered: stopping replication may take seconds")
		}
		x.stopEarly(outer, p)
	}
	if err := s.Detach(ctx, channels); err != nil {
		return err
	}
	return s.SetReadOnly(ctx, false)
}

// stopEarly starts, beside the candidate's promotion, the stop of the IO threads the
// replicas to repoint run from the dead master: stopping a semi-sync replica from a frozen
// or cut-off source costs about a second (MariaDB logs in there to kill its dump thread),
// which each repoint step would otherwise pay after the promotion. Each repoint step waits
// for its own early stop; the run waits for all before it returns.
func (x *Executor) stopEarly(ctx context.Context, p Plan) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, rs := range p.Steps {
		if rs.Kind != StepRepointReplica || x.early[rs.Server] != nil {
			continue
		}
		if x.early == nil {
			x.early = map[ipv6.HostPort]chan struct{}{}
		}
		done := make(chan struct{})
		x.early[rs.Server] = done
		go func(addr ipv6.HostPort) {
			defer close(done)
			sctx, cancel := x.sqlCtx(ctx)
			defer cancel()
			x.stopFromDeadSource(sctx, p.OldMaster, addr)
		}(rs.Server)
	}
}

// waitEarly waits for the early stop of addr's IO threads, if one runs.
func (x *Executor) waitEarly(ctx context.Context, addr ipv6.HostPort) {
	x.mu.Lock()
	done := x.early[addr]
	x.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// waitAllEarly waits for every early stop and forgets them: no goroutine outlives the run.
func (x *Executor) waitAllEarly() {
	x.mu.Lock()
	early := x.early
	x.early = nil
	x.mu.Unlock()
	for _, done := range early {
		<-done
	}
}

// stopFromDeadSource stops the IO threads a replica runs from the dead master, ahead of its
// repoint step, which stops and changes the rest; a failure here is that step's to report.
func (x *Executor) stopFromDeadSource(ctx context.Context, dead, addr ipv6.HostPort) {
	s, err := x.server(addr)
	if err != nil {
		return
	}
	st, err := s.Probe(ctx)
	if err != nil {
		return
	}
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if !ipv6.SameAddr(src, dead) {
			continue
		}
		if err := s.PrepareStopFromDeadSource(ctx); err != nil {
			x.log.WithError(err).WithField("server", addr.String()).Debug("semi-sync kill timeout not lowered")
		}
		if err := s.StopReplicaIOThread(ctx, r.ConnectionName); err != nil {
			x.log.WithError(err).WithField("server", addr.String()).Debug("early stop of the IO thread from the dead master")
		}
	}
}

// position reads a server's current GTID position; nil when it cannot.
func (x *Executor) position(ctx context.Context, addr ipv6.HostPort) gtid.List {
	s, err := x.server(addr)
	if err != nil {
		return nil
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	l, _ := s.CurrentGTIDPos(ctx)
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

// replicate is how every server of the cluster replicates from source: the cluster's
// replication user, GTID, heartbeat and retry, read-only unless ignored.
func (x *Executor) replicate(addr, source ipv6.HostPort, channel string, pos gtid.List, stopAll bool) mariadb.ReplicateOptions {
	return mariadb.ReplicateOptions{
		ChangeMasterOptions: mariadb.ChangeMasterOptions{
			Channel: channel, Host: source, User: x.cfg.ReplUser, Password: x.cfg.ReplPassword, UseGTID: mariadb.GTIDSlavePos,
			ConnectRetry: x.cfg.ConnectRetry, HeartbeatPeriod: x.cfg.HeartbeatPeriod, SSL: x.cfg.ReplSSL,
		},
		Position: pos, StopAll: stopAll, ReadOnly: x.readOnly(addr),
	}
}

func (x *Executor) readOnly(addr ipv6.HostPort) bool {
	return x.cfg.ReadOnlyReplicas && !x.cfg.IgnoredReadOnly[addr]
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
	x.mu.Lock()
	frozen := x.frozen
	x.frozen = nil
	x.mu.Unlock()
	if frozen != nil {
		frozen.KillClients(ctx) // writers that reconnected during the switch
		err := frozen.Unlock(ctx)
		frozen.Close()
		if err != nil {
			return err
		}
	}
	pos := x.getState().FinalPos
	if len(pos) == 0 {
		// Resumed after a crash: the read lock died with the manager's session, and
		// read_only kept clients out, so the server's own position is still the final one.
		if pos, err = s.CurrentGTIDPos(ctx); err != nil {
			return err
		}
	}
	return s.ReplicateFrom(ctx, x.replicate(addr, p.NewMaster, "", pos, true))
}

// repoint moves a replica to the new master. A replica holding transactions the new master
// lacks is left alone: repointing it would fail or diverge silently.
func (x *Executor) repoint(ctx context.Context, p Plan, addr ipv6.HostPort) (string, error) {
	x.waitEarly(ctx, addr)
	s, err := x.server(addr)
	if err != nil {
		return "", err
	}
	nm, err := x.server(p.NewMaster)
	if err != nil {
		return "", err
	}
	if final := x.getState().FinalPos; p.Kind == PlanSwitchover && x.cfg.SlaveWaitCatch && len(final) > 0 {
		wctx, cancel := context.WithTimeout(ctx, x.cfg.WaitTrx+x.cfg.StepTimeout)
		ok, err := s.MasterGTIDWait(wctx, final, x.cfg.WaitTrx)
		cancel()
		if err != nil || !ok {
			x.log.WithField("server", addr.String()).Warn("replica did not catch up with the old master before repointing")
		}
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	mp, err := s.CurrentGTIDPos(ctx)
	if err != nil {
		return "", err
	}
	tp, err := nm.CurrentGTIDPos(ctx)
	if err != nil {
		return "", err
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
			return "already replicating from the new master", s.SetReadOnly(ctx, x.readOnly(addr))
		}
		if ipv6.SameAddr(src, p.OldMaster) || ipv6.SameAddr(src, p.NewMaster) {
			channel = r.ConnectionName
		}
	}
	if p.Kind == PlanFailover || p.Kind == PlanRelay {
		if err := s.PrepareStopFromDeadSource(ctx); err != nil {
			x.log.WithError(err).Warn("semi-sync kill timeout not lowered: stopping replication may take seconds")
		}
	}
	return "", s.ReplicateFrom(ctx, x.replicate(addr, p.NewMaster, channel, nil, false))
}

// rejoin makes a former master that has not diverged a replica of the master: read-only
// first, then its own position becomes its replication position, so it fetches exactly
// what it missed. One holding transactions the master lacks stays read-only and alone.
func (x *Executor) rejoin(ctx context.Context, addr, master ipv6.HostPort) (string, error) {
	s, err := x.server(addr)
	if err != nil {
		return "", err
	}
	m, err := x.server(master)
	if err != nil {
		return "", err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	if err := s.SetReadOnly(ctx, true); err != nil {
		return "", err
	}
	st, err := s.Probe(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if ipv6.SameAddr(src, master) && r.IORunning() && r.SQLRunning() {
			return "already replicating from the master", s.SetReadOnly(ctx, x.readOnly(addr))
		}
	}
	own, err := s.CurrentGTIDPos(ctx)
	if err != nil {
		return "", err
	}
	theirs, err := m.CurrentGTIDPos(ctx)
	if err != nil {
		return "", err
	}
	if !theirs.Contains(own) {
		return "", fmt.Errorf("%s has transactions the master %s lacks (%s): left read-only, needs a reseed", addr, master, gtid.Errant(own, theirs))
	}
	return "", s.ReplicateFrom(ctx, x.replicate(addr, master, "", own, true))
}

// openMaster makes the bootstrap's master writable and reads the position its replicas
// start from (kept in the journal, so a resumed bootstrap uses the same one).
func (x *Executor) openMaster(ctx context.Context, addr ipv6.HostPort) error {
	s, err := x.server(addr)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	if err := s.SetReadOnly(ctx, false); err != nil {
		return err
	}
	pos, err := s.CurrentGTIDPos(ctx)
	if err != nil {
		return err
	}
	x.setState(func(st *RunState) { st.SourcePos = pos })
	return nil
}

// replicateFrom makes a bootstrap replica follow the master from the master's position.
// A server already connected to the master only has its threads started: resetting its
// position again would re-apply what it already applied.
func (x *Executor) replicateFrom(ctx context.Context, addr, master ipv6.HostPort) (string, error) {
	s, err := x.server(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	st, err := s.Probe(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range st.Replications {
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort}
		if ipv6.SameAddr(src, master) && r.ConnectionName == x.cfg.Channel {
			if !r.IORunning() || !r.SQLRunning() {
				if err := s.StartReplica(ctx, r.ConnectionName); err != nil {
					return "", err
				}
			}
			return "already connected to the master", s.SetReadOnly(ctx, x.readOnly(addr))
		}
	}
	return "", s.ReplicateFrom(ctx, x.replicate(addr, master, x.cfg.Channel, x.getState().SourcePos, true))
}

// resetReplication leaves a server with no replication and an empty binary log.
func (x *Executor) resetReplication(ctx context.Context, st Step) error {
	s, err := x.server(st.Server)
	if err != nil {
		return err
	}
	ctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	return s.ResetReplication(ctx, st.Channels)
}

// rollback undoes a switchover that stopped before the promotion: the old master takes
// writes again. It reports whether there was anything to undo.
func (x *Executor) rollback(p Plan) bool {
	if p.Kind != PlanSwitchover {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.cfg.StepTimeout)
	defer cancel()
	x.mu.Lock()
	frozen := x.frozen
	x.frozen = nil
	x.mu.Unlock()
	if frozen != nil {
		frozen.Unlock(ctx)
		frozen.Close()
	}
	if s, err := x.server(p.OldMaster); err == nil {
		if err := s.SetReadOnly(ctx, false); err != nil {
			x.log.WithError(err).Error("rollback: old master stays read-only")
			return false
		}
	}
	x.observe(ActionEvent{Kind: ObsRolledBack, Plan: p.Kind, Origin: p.Origin, Server: p.OldMaster.String(), Message: "rolled back: old master writable again"})
	return true
}

// rollbackUnpromoted undoes, after a crash, a switchover that stopped before its
// promotion: the read lock died with the manager's session; the old master is made writable
// again and the candidate, untouched until the promotion, keeps replicating.
func (x *Executor) rollbackUnpromoted(ctx context.Context, p Plan) Result {
	res := Result{Plan: p, Start: time.Now(), RolledBack: true}
	sctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	err := func() error {
		s, err := x.server(p.OldMaster)
		if err != nil {
			return err
		}
		if err := s.SetReadOnly(sctx, false); err != nil {
			return err
		}
		c, err := x.server(p.NewMaster)
		if err != nil {
			return err
		}
		st, err := c.Probe(sctx)
		if err != nil {
			return err
		}
		for _, r := range st.Replications {
			if !r.IORunning() || !r.SQLRunning() {
				if err := c.StartReplica(sctx, r.ConnectionName); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	res.Duration = time.Since(res.Start)
	msg := "rolled back: old master writable again"
	if err != nil {
		res.Err = "rollback: " + err.Error()
		msg = res.Err
	}
	x.observe(ActionEvent{Kind: ObsRolledBack, Plan: p.Kind, Origin: p.Origin, Server: p.OldMaster.String(), Message: msg, Error: res.Err})
	return res
}

func (x *Executor) release() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.frozen != nil {
		x.frozen.Close()
		x.frozen = nil
	}
}

// crashRecord is what a failover or switchover leaves on disk for the rejoin of the old
// master and for people.
// CrashRecord is what a failover or switchover leaves in <StateDir>/<cluster>/ (the
// original's crash list: topology/crashes).
type CrashRecord struct {
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
	b, err := json.MarshalIndent(CrashRecord{Cluster: x.cfg.Cluster, Kind: p.Kind, Time: now, OldMaster: p.OldMaster, NewMaster: p.NewMaster, FinalPos: x.getState().FinalPos, Election: p.Election}, "", "  ")
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
