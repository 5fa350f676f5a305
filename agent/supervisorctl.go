package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
)

// service is what an agent keeps in the manager's wanted state: a process it runs itself
// (supervisor) or a program of the partition's supervisord (supervisorctl). jobs.go and the
// actions only ask; loop, run by the agent, serves the asks until its context ends.
type service interface {
	name() string
	ask(ctx context.Context, op, why string) (Status, error)
	loop(ctx context.Context)
}

// Supervisord names the supervisord program an agent drives instead of running the
// process itself (SlapOS' partitions run theirs under supervisord).
type Supervisord struct {
	Program string // the [program:x] name
	// Ctl is supervisorctl (default: supervisorctl in PATH); Conf the supervisord.conf
	// supervisorctl reads (-c), "" for supervisorctl's own default.
	Ctl, Conf string
	// Timeout bounds one supervisorctl call (default 2 minutes: a stop waits stopwaitsecs).
	Timeout time.Duration
}

// supervisorctl drives a supervisord program: supervisord starts, restarts after a crash
// and stops the process; the agent calls supervisorctl for the manager's actions, never
// running the process itself, and checks that nothing else holds the service's ports
// before a start, so there is never a second copy. Its loop goroutine serializes the calls.
type supervisorctl struct {
	sd    Supervisord
	svc   string // the process, for logs: mariadbd, proxysql
	ready func() []ipv6.HostPort
	log   logrus.FieldLogger
	// startTimeout bounds the wait for a started program to accept connections.
	startTimeout         time.Duration
	wantFile, statusFile string
	reqs                 chan request

	// Owned by loop: the last status, answered again to status requests for
	// statusCacheFor (the jobs ask every second; each supervisorctl is a Python start-up).
	last   Status
	lastAt time.Time
}

const statusCacheFor = 5 * time.Second

func newSupervisorctl(sd Supervisord, svc string, ready func() []ipv6.HostPort, wantFile, statusFile string, log logrus.FieldLogger) *supervisorctl {
	if sd.Ctl == "" {
		sd.Ctl = "supervisorctl"
	}
	if sd.Timeout <= 0 {
		sd.Timeout = 2 * time.Minute
	}
	return &supervisorctl{sd: sd, svc: svc, ready: ready, wantFile: wantFile, statusFile: statusFile,
		startTimeout: 10 * time.Minute, reqs: make(chan request),
		log: log.WithField("program", sd.Program)}
}

func (s *supervisorctl) name() string { return s.svc }

func (s *supervisorctl) ask(ctx context.Context, op, why string) (Status, error) {
	return askLoop(ctx, s.reqs, op, why)
}

// loop serves requests until ctx ends. The program is left as it is then: supervisord,
// not the agent, owns it.
func (s *supervisorctl) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.reqs:
			st, err := s.serve(ctx, r)
			r.reply <- reply{status: st, err: err}
		}
	}
}

func (s *supervisorctl) serve(ctx context.Context, r request) (Status, error) {
	if r.op == "status" && time.Since(s.lastAt) < statusCacheFor {
		return s.last, nil
	}
	var err error
	switch r.op {
	case "start":
		writeWanted(s.wantFile, true)
		err = s.start(ctx)
	case "stop":
		writeWanted(s.wantFile, false)
		_, err = s.ctl(ctx, "stop")
	case "restart":
		writeWanted(s.wantFile, true)
		if err = s.checkForeign(ctx); err == nil {
			if _, err = s.ctl(ctx, "restart"); err == nil {
				err = s.waitReady(ctx)
			}
		}
	case "status":
	default:
		err = fmt.Errorf("unknown request %q", r.op)
	}
	st, serr := s.status(ctx)
	st.LastAction = s.last.LastAction
	if r.op != "status" {
		st.LastAction = r.op + ": " + r.why
	}
	if err == nil {
		err = serr
	}
	if err != nil {
		st.LastError = err.Error()
	}
	if serr == nil {
		s.last, s.lastAt = st, time.Now()
	} else {
		s.lastAt = time.Time{}
	}
	if b, jerr := json.MarshalIndent(st, "", "  "); jerr == nil {
		_ = writeFileAtomic(s.statusFile, append(b, '\n'), 0o644)
	}
	return st, err
}

// start starts the program unless supervisord runs it already.
func (s *supervisorctl) start(ctx context.Context) error {
	st, err := s.status(ctx)
	if err != nil {
		return err
	}
	if st.State == "running" || st.State == "starting" {
		return s.waitReady(ctx)
	}
	if err := s.checkForeign(ctx); err != nil {
		return err
	}
	if _, err := s.ctl(ctx, "start"); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// checkForeign refuses a start while something supervisord does not run holds a port.
func (s *supervisorctl) checkForeign(ctx context.Context) error {
	st, err := s.status(ctx)
	if err != nil {
		return err
	}
	if st.State == "running" || st.State == "starting" || st.State == "stopping" {
		return nil
	}
	for _, a := range s.ready() {
		if acceptsAt(a) {
			return fmt.Errorf("not started: another process listens on %s", a)
		}
	}
	return nil
}

func (s *supervisorctl) waitReady(ctx context.Context) error {
	addrs := s.ready()
	if len(addrs) == 0 {
		return nil
	}
	deadline := time.NewTimer(s.startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !allAccepting(addrs) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%s not accepting connections after %s", s.svc, s.startTimeout)
		case <-tick.C:
		}
		// A program that fails to start ends in BACKOFF or FATAL: no use waiting on.
		if st, err := s.status(ctx); err == nil && (st.State == "crashed" || st.State == "stopped") {
			return fmt.Errorf("%s did not start: supervisord says %s", s.svc, st.LastError)
		}
	}
	return nil
}

// status asks supervisorctl status for the program.
func (s *supervisorctl) status(ctx context.Context) (Status, error) {
	out, err := s.run(ctx, "status", s.sd.Program)
	st, perr := parseSupervisorStatus(s.sd.Program, out)
	if perr != nil {
		if err != nil {
			return st, fmt.Errorf("supervisorctl status %s: %w: %s", s.sd.Program, err, firstLine(out))
		}
		return st, perr
	}
	// supervisorctl status exits non-zero for a program that does not run: not an error.
	st.Wanted = readWanted(s.wantFile)
	return st, nil
}

// ctl runs supervisorctl <verb> <program> and checks the answer line.
func (s *supervisorctl) ctl(ctx context.Context, verb string) (string, error) {
	out, err := s.run(ctx, verb, s.sd.Program)
	text := strings.TrimSpace(string(out))
	// "ERROR (already started)" and "ERROR (not running)" are the wanted state already;
	// supervisorctl exits non-zero for them.
	done := strings.Contains(text, ": started") || strings.Contains(text, ": stopped") ||
		strings.Contains(text, "already started") || strings.Contains(text, "not running")
	failed := false
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "ERROR") && !strings.Contains(line, "already started") && !strings.Contains(line, "not running") {
			failed = true
		}
	}
	if failed || (err != nil && !done) {
		return text, fmt.Errorf("supervisorctl %s %s: %s (%v)", verb, s.sd.Program, firstLine(out), err)
	}
	s.log.WithField("verb", verb).Infof("supervisorctl: %s", strings.Join(strings.Fields(strings.ReplaceAll(text, "\n", "; ")), " "))
	return text, nil
}

func (s *supervisorctl) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.sd.Timeout)
	defer cancel()
	if s.sd.Conf != "" {
		args = append([]string{"-c", s.sd.Conf}, args...)
	}
	cmd := exec.CommandContext(ctx, s.sd.Ctl, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (timeout %s)", err, s.sd.Timeout)
	}
	return out.Bytes(), err
}

// parseSupervisorStatus reads the program's line of `supervisorctl status <program>`:
// "name   RUNNING   pid 123, uptime 0:01:02" or "name   EXITED    Dec 02 03:00 AM".
func parseSupervisorStatus(program string, out []byte) (Status, error) {
	var st Status
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != program {
			continue
		}
		if strings.HasPrefix(f[1], "ERROR") {
			break
		}
		st.Since = time.Now().UTC()
		rest := strings.TrimSpace(strings.Join(f[2:], " "))
		switch f[1] {
		case "RUNNING":
			st.State = "running"
			if len(f) >= 4 && f[2] == "pid" {
				st.Pid, _ = strconv.Atoi(strings.TrimSuffix(f[3], ","))
			}
		case "STARTING":
			st.State = "starting"
		case "STOPPING":
			st.State = "stopping"
		case "BACKOFF", "FATAL":
			st.State = "crashed"
			st.LastError = f[1] + " " + rest
		case "STOPPED", "EXITED":
			st.State = "stopped"
			st.LastError = f[1] + " " + rest
		default:
			st.State = strings.ToLower(f[1])
			st.LastError = f[1] + " " + rest
		}
		return st, nil
	}
	return st, fmt.Errorf("supervisorctl status %s: %s", program, firstLine(out))
}
