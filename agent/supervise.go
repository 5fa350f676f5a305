package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// Restart backoff after a crash: 1 s, doubling, at most maxBackoff; a server that ran
// stableAfter counts as healthy again.
const (
	minBackoff  = time.Second
	maxBackoff  = time.Minute
	stableAfter = 2 * time.Minute
)

// Status is what the agent reports of its service, in var/run/agent-status.json.
type Status struct {
	State      string    `json:"state"` // running, stopped, starting, crashed, waiting
	Pid        int       `json:"pid,omitempty"`
	Since      time.Time `json:"since"`
	Wanted     bool      `json:"wanted"` // the service should run
	Restarts   int       `json:"restarts"`
	LastError  string    `json:"last_error,omitempty"`
	LastAction string    `json:"last_action,omitempty"`
}

// procSpec is a process the agent runs itself: what to run, where its files are, and the
// addresses that tell it is ready (and that another copy already runs).
type procSpec struct {
	name     string // mariadbd, proxysql: in logs, and looked for in a pid file's process
	bin      string
	args     []string
	dir      string
	stdout   string // where its output goes (SlapOS' supervisord stdout_logfile)
	pidFile  string
	writePid bool                   // the process writes no pid file itself (proxysql -f): the agent does
	errorLog string                 // where its errors are; "" for stdout
	ready    func() []ipv6.HostPort // where it accepts connections once ready
	// wantFile and statusFile persist the wanted state and report the status.
	wantFile, statusFile string
}

// supervisor runs one process (mariadbd, proxysql) as a child and keeps it in its wanted
// state: started and stopped on request, restarted with a backoff when it dies
// unexpectedly, left stopped when it exits cleanly (a SHUTDOWN from the manager), as
// supervisord's autorestart=unexpected does. Its loop goroutine owns all its state; Run's
// caller owns the loop.
type supervisor struct {
	spec procSpec
	log  logrus.FieldLogger
	// stopTimeout bounds a graceful stop before SIGKILL.
	stopTimeout time.Duration
	// startTimeout bounds the wait for a started server to accept connections (crash
	// recovery can be long); the process is left running after it.
	startTimeout time.Duration

	reqs chan request
	// report, when set, receives what the supervisor did on its own (a death, a restart
	// after one, a clean exit); it must not block.
	report func(slapos.AgentReport)

	// Owned by loop.
	cmd      *exec.Cmd
	done     chan struct{}
	exitErr  error
	started  time.Time
	wanted   bool
	backoff  time.Duration
	retry    *time.Timer
	status   Status
	restarts int
	logFrom  int64 // size of the error log when the process started: its own lines follow
}

type request struct {
	op    string // "start", "stop", "restart", "status"
	why   string
	reply chan reply
}

type reply struct {
	err    error
	status Status
}

func newSupervisor(spec procSpec, log logrus.FieldLogger) *supervisor {
	if spec.errorLog == "" {
		spec.errorLog = spec.stdout
	}
	return &supervisor{spec: spec, log: log, stopTimeout: 10 * time.Minute,
		startTimeout: 10 * time.Minute, reqs: make(chan request)}
}

// mariadbdSpec is mariadbd as SlapOS' supervisord program runs it.
func mariadbdSpec(l Layout, bin string, extra []string, addr ipv6.HostPort) procSpec {
	args := []string{"--defaults-file=" + l.MyCnf(), "--pid-file=" + l.PidFile()}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return procSpec{name: "mariadbd", bin: bin, args: append(args, extra...), dir: l.Root,
		stdout: l.StdoutLog(), pidFile: l.PidFile(), errorLog: l.ErrorLog(), ready: func() []ipv6.HostPort { return []ipv6.HostPort{addr} },
		wantFile: l.WantFile(), statusFile: l.StatusFile()}
}

func (s *supervisor) name() string { return s.spec.name }

// ask sends a request to the loop and waits for its answer.
func (s *supervisor) ask(ctx context.Context, op, why string) (Status, error) {
	return askLoop(ctx, s.reqs, op, why)
}

// askLoop sends a request to a service's loop goroutine (the only owner of its state) and
// waits for the answer.
func askLoop(ctx context.Context, reqs chan<- request, op, why string) (Status, error) {
	r := request{op: op, why: why, reply: make(chan reply, 1)}
	select {
	case reqs <- r:
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
	select {
	case a := <-r.reply:
		return a.status, a.err
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

// loop serves requests until ctx ends, then stops the process gracefully and returns.
func (s *supervisor) loop(ctx context.Context) {
	s.wanted = readWanted(s.spec.wantFile)
	s.setState("stopped", "")
	for {
		var exited <-chan struct{}
		if s.cmd != nil {
			exited = s.done
		}
		var retry <-chan time.Time
		if s.retry != nil {
			retry = s.retry.C
		}
		select {
		case <-ctx.Done():
			if s.retry != nil {
				s.retry.Stop()
			}
			if s.cmd != nil {
				s.log.Infof("agent stopping: stopping %s", s.spec.name)
				s.stopProcess()
			}
			return
		case r := <-s.reqs:
			var err error
			switch r.op {
			case "start":
				s.status.LastAction = "start: " + r.why
				s.setWanted(true)
				err = s.start(ctx)
			case "stop":
				s.status.LastAction = "stop: " + r.why
				s.setWanted(false)
				err = s.stop()
			case "restart":
				s.status.LastAction = "restart: " + r.why
				s.setWanted(true)
				if err = s.stop(); err == nil {
					err = s.start(ctx)
				}
			case "status":
			default:
				err = fmt.Errorf("unknown request %q", r.op)
			}
			r.reply <- reply{err: err, status: s.status}
		case <-exited:
			s.reap()
		case <-retry:
			s.retry = nil
			if s.wanted && s.cmd == nil {
				err := s.start(ctx)
				if err != nil {
					s.log.WithError(err).Warnf("%s restart failed", s.spec.name)
				}
				res, msg := outcome(err)
				s.tell(slapos.AgentReport{Action: "crash-restart", Via: "supervisor", Result: res, Error: msg, Detail: pidDetail(s.status)})
			}
		}
	}
}

// reap handles an exit the supervisor did not ask for.
func (s *supervisor) reap() {
	err, ran := s.exitErr, time.Since(s.started)
	s.cmd, s.done = nil, nil
	if err == nil {
		// A clean exit: the manager's SQL SHUTDOWN (the SlapOS orchestrator's stop). Left
		// stopped until the manager asks for a start.
		s.setWanted(false)
		s.log.Infof("%s exited cleanly (shutdown): left stopped until the manager asks for a start", s.spec.name)
		s.setState("stopped", "")
		s.tell(slapos.AgentReport{Action: "exit", Via: "supervisor", Result: "done", Detail: "clean shutdown: left stopped until the manager asks for a start"})
		return
	}
	if !s.wanted {
		s.setState("stopped", err.Error())
		return
	}
	if ran > stableAfter {
		s.backoff = 0
	}
	if s.backoff < minBackoff {
		s.backoff = minBackoff
	} else {
		s.backoff *= 2
		if s.backoff > maxBackoff {
			s.backoff = maxBackoff
		}
	}
	s.restarts++
	s.status.Restarts = s.restarts
	s.log.WithField("after", ran.Round(time.Millisecond).String()).WithField("retry_in", s.backoff.String()).
		Warnf("%s died (%v): restarting: %s", s.spec.name, err, lastErrorLine(s.spec.errorLog, s.logFrom))
	s.setState("crashed", err.Error())
	s.retry = time.NewTimer(s.backoff)
	s.tell(slapos.AgentReport{Action: "crash", Via: "supervisor", Result: "failed",
		Error:  fmt.Sprintf("%s died (%v): %s", s.spec.name, err, lastErrorLine(s.spec.errorLog, s.logFrom)),
		Detail: "restarting in " + s.backoff.String()})
}

func (s *supervisor) tell(r slapos.AgentReport) {
	if s.report != nil {
		s.report(r)
	}
}

// start runs the process unless it runs already, and waits until it accepts connections.
func (s *supervisor) start(ctx context.Context) error {
	if s.cmd != nil {
		return nil
	}
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	if other := s.foreign(); other != "" {
		// Never two copies: another one owns this partition (or its port).
		s.setState("waiting", other)
		if s.backoff < minBackoff {
			s.backoff = minBackoff
		}
		s.retry = time.NewTimer(s.backoff)
		return fmt.Errorf("not started: %s", other)
	}
	sp := s.spec
	out, err := os.OpenFile(sp.stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start %s: %w", sp.name, err)
	}
	cmd := exec.Command(sp.bin, sp.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = sp.dir
	// The agent is the supervisor: if it dies, the process shuts down cleanly rather than
	// running on unsupervised beside the next agent's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	s.logFrom = 0
	if st, err := os.Stat(sp.errorLog); err == nil {
		s.logFrom = st.Size()
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", sp.name, err)
	}
	out.Close()
	if sp.writePid {
		if err := writeFileAtomic(sp.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			s.log.WithError(err).Warn("pid file not written")
		}
	}
	done := make(chan struct{})
	s.cmd, s.done, s.started, s.exitErr = cmd, done, t0, nil
	go func() { // the waiter: owned by this process's lifetime, ends when it exits
		err := cmd.Wait()
		s.exitErr = err // read by loop only after done is closed
		close(done)
	}()
	s.setState("starting", "")
	deadline := time.NewTimer(s.startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.accepting() {
			s.setState("running", "")
			s.log.WithField("pid", cmd.Process.Pid).WithField("took", time.Since(t0).Round(time.Millisecond).String()).
				Infof("%s accepting connections", sp.name)
			return nil
		}
		select {
		case <-done:
			s.reap()
			return fmt.Errorf("%s exited while starting: %s", sp.name, lastErrorLine(sp.errorLog, s.logFrom))
		case <-deadline.C:
			s.setState("running", "not accepting connections yet")
			return fmt.Errorf("%s not accepting connections after %s (left running)", sp.name, s.startTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop stops the process (SIGTERM: a clean shutdown, SIGKILL after stopTimeout).
func (s *supervisor) stop() error {
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	if s.cmd == nil {
		s.setState("stopped", "")
		return nil
	}
	s.stopProcess()
	s.setState("stopped", "")
	return nil
}

func (s *supervisor) stopProcess() {
	cmd, done := s.cmd, s.done
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(s.stopTimeout):
		s.log.Warnf("%s did not stop within %s: killed", s.spec.name, s.stopTimeout)
		_ = cmd.Process.Kill()
		<-done
	}
	s.cmd, s.done = nil, nil
	if s.spec.writePid {
		os.Remove(s.spec.pidFile)
	}
	s.log.WithField("pid", cmd.Process.Pid).Infof("%s stopped", s.spec.name)
}

// accepting reports whether every ready address accepts TCP connections.
func (s *supervisor) accepting() bool { return allAccepting(s.spec.ready()) }

func allAccepting(addrs []ipv6.HostPort) bool {
	for _, a := range addrs {
		if !acceptsAt(a) {
			return false
		}
	}
	return len(addrs) > 0
}

func acceptsAt(a ipv6.HostPort) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ipv6.Unbracket(a.Host), strconv.Itoa(a.Port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// foreign names a copy of the process this supervisor did not start that runs on the
// partition (its pid file names a live one) or holds one of its ports; "" when there is none.
func (s *supervisor) foreign() string {
	return foreignProcess(s.spec.name, s.spec.pidFile, s.spec.ready())
}

func foreignProcess(name, pidFile string, addrs []ipv6.HostPort) string {
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil {
				c := string(cmdline)
				if strings.Contains(c, name) || (name == "mariadbd" && strings.Contains(c, "mysqld")) {
					return fmt.Sprintf("%s pid %d of %s still runs", name, pid, pidFile)
				}
			}
		}
	}
	for _, a := range addrs {
		if acceptsAt(a) {
			return fmt.Sprintf("another process listens on %s", a)
		}
	}
	return ""
}

func (s *supervisor) setWanted(w bool) {
	if s.wanted == w {
		return
	}
	s.wanted = w
	writeWanted(s.spec.wantFile, w)
}

func (s *supervisor) setState(state, errText string) {
	s.status.State = state
	s.status.Since = time.Now().UTC()
	s.status.Wanted = s.wanted
	s.status.LastError = errText
	s.status.Pid = 0
	if s.cmd != nil && s.cmd.Process != nil {
		s.status.Pid = s.cmd.Process.Pid
	}
	if b, err := json.MarshalIndent(s.status, "", "  "); err == nil {
		_ = writeFileAtomic(s.spec.statusFile, append(b, '\n'), 0o644)
	}
}

// readWanted is the persisted wish: true unless the last word was a stop (an agent that
// restarts keeps a database the manager stopped stopped).
func readWanted(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	return strings.TrimSpace(string(b)) != "stopped"
}

func writeWanted(path string, w bool) {
	v := "stopped\n"
	if w {
		v = "running\n"
	}
	_ = writeFileAtomic(path, []byte(v), 0o644)
}

// lastErrorLine is the last [ERROR] line the error log got after offset from, or its last
// line, or a note that it got none.
func lastErrorLine(path string, from int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no error log)"
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return "(nothing in the error log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-50; i-- {
		if strings.Contains(lines[i], "[ERROR]") {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

var errLocked = errors.New("another agent runs in this partition")

// lockPartition takes an agent lock (flock, released when the process ends).
func lockPartition(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s is locked)", errLocked, path)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
