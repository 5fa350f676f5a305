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

// supervisor runs mariadbd as a child process and keeps it in its wanted state: started
// and stopped on request, restarted with a backoff when it dies unexpectedly, left stopped
// when it exits cleanly (a SHUTDOWN from the manager), as supervisord's autorestart=unexpected
// does. Its loop goroutine owns all its state; Run's caller owns the loop.
type supervisor struct {
	l     Layout
	bin   string
	extra []string
	addr  ipv6.HostPort // where mariadbd accepts connections once ready
	log   logrus.FieldLogger
	// stopTimeout bounds a graceful stop before SIGKILL.
	stopTimeout time.Duration
	// startTimeout bounds the wait for a started server to accept connections (crash
	// recovery can be long); the process is left running after it.
	startTimeout time.Duration

	reqs chan request

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

func newSupervisor(l Layout, bin string, extra []string, addr ipv6.HostPort, log logrus.FieldLogger) *supervisor {
	return &supervisor{l: l, bin: bin, extra: extra, addr: addr, log: log, stopTimeout: 10 * time.Minute,
		startTimeout: 10 * time.Minute, reqs: make(chan request)}
}

// ask sends a request to the loop and waits for its answer.
func (s *supervisor) ask(ctx context.Context, op, why string) (Status, error) {
	r := request{op: op, why: why, reply: make(chan reply, 1)}
	select {
	case s.reqs <- r:
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

// loop serves requests until ctx ends, then stops mariadbd gracefully and returns.
func (s *supervisor) loop(ctx context.Context) {
	s.wanted = readWanted(s.l)
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
				s.log.Info("agent stopping: stopping mariadbd")
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
				if err := s.start(ctx); err != nil {
					s.log.WithError(err).Warn("mariadbd restart failed")
				}
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
		s.log.Info("mariadbd exited cleanly (shutdown): left stopped until the manager asks for a start")
		s.setState("stopped", "")
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
		Warnf("mariadbd died (%v): restarting: %s", err, lastErrorLine(s.l.ErrorLog(), s.logFrom))
	s.setState("crashed", err.Error())
	s.retry = time.NewTimer(s.backoff)
}

// start runs mariadbd unless it runs already, and waits until it accepts connections.
func (s *supervisor) start(ctx context.Context) error {
	if s.cmd != nil {
		return nil
	}
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	if other := s.foreign(); other != "" {
		// Never two copies: another mariadbd owns this partition (or its port).
		s.setState("waiting", other)
		if s.backoff < minBackoff {
			s.backoff = minBackoff
		}
		s.retry = time.NewTimer(s.backoff)
		return fmt.Errorf("not started: %s", other)
	}
	args := []string{"--defaults-file=" + s.l.MyCnf(), "--pid-file=" + s.l.PidFile()}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, s.extra...)
	out, err := os.OpenFile(s.l.StdoutLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.l.Root
	// The agent is the supervisor: if it dies, mariadbd shuts down cleanly rather than
	// running on unsupervised beside the next agent's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	s.logFrom = 0
	if st, err := os.Stat(s.l.ErrorLog()); err == nil {
		s.logFrom = st.Size()
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start mariadbd: %w", err)
	}
	out.Close()
	done := make(chan struct{})
	s.cmd, s.done, s.started, s.exitErr = cmd, done, t0, nil
	go func() { // the waiter: owned by this process's lifetime, ends when mariadbd exits
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
				Info("mariadbd accepting connections")
			return nil
		}
		select {
		case <-done:
			s.reap()
			return fmt.Errorf("mariadbd exited while starting: %s", lastErrorLine(s.l.ErrorLog(), s.logFrom))
		case <-deadline.C:
			s.setState("running", "not accepting connections yet")
			return fmt.Errorf("mariadbd not accepting connections after %s (left running)", s.startTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop stops mariadbd (SIGTERM: a clean shutdown, SIGKILL after stopTimeout).
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
		s.log.Warnf("mariadbd did not stop within %s: killed", s.stopTimeout)
		_ = cmd.Process.Kill()
		<-done
	}
	s.cmd, s.done = nil, nil
	s.log.WithField("pid", cmd.Process.Pid).Info("mariadbd stopped")
}

// accepting reports whether the server accepts TCP connections at its address.
func (s *supervisor) accepting() bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ipv6.Unbracket(s.addr.Host), strconv.Itoa(s.addr.Port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// foreign names a mariadbd this supervisor did not start that runs on the partition (its
// pid file names a live mariadbd) or holds its port; "" when there is none.
func (s *supervisor) foreign() string {
	if b, err := os.ReadFile(s.l.PidFile()); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil {
				c := string(cmdline)
				if strings.Contains(c, "mariadbd") || strings.Contains(c, "mysqld") {
					return fmt.Sprintf("mariadbd pid %d of %s still runs", pid, s.l.PidFile())
				}
			}
		}
	}
	if s.accepting() {
		return fmt.Sprintf("another process listens on %s", s.addr)
	}
	return ""
}

func (s *supervisor) setWanted(w bool) {
	if s.wanted == w {
		return
	}
	s.wanted = w
	writeWanted(s.l, w)
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
		_ = writeFileAtomic(s.l.StatusFile(), append(b, '\n'), 0o644)
	}
}

// readWanted is the persisted wish: true unless the last word was a stop (an agent that
// restarts keeps a database the manager stopped stopped).
func readWanted(l Layout) bool {
	b, err := os.ReadFile(l.WantFile())
	if err != nil {
		return true
	}
	return strings.TrimSpace(string(b)) != "stopped"
}

func writeWanted(l Layout, w bool) {
	v := "stopped\n"
	if w {
		v = "running\n"
	}
	_ = writeFileAtomic(l.WantFile(), []byte(v), 0o644)
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

// lockPartition takes the partition's agent lock (flock, released when the process ends).
func lockPartition(l Layout) (func(), error) {
	if err := os.MkdirAll(l.Run(), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.LockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s is locked)", errLocked, l.LockFile())
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
