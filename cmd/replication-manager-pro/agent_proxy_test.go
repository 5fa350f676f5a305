package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/agent"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// proxyFixture is the daemon on the seed's request with free ProxySQL ports, and what a
// test needs of its ProxySQL node.
type proxyFixture struct {
	d                  *slaposDaemon
	bin                string
	admin              ipv6.HostPort // the node: proxysql-servers host, admin port
	client             ipv6.HostPort
	adminUser, adminPW string
}

func newProxyFixture(t *testing.T) *proxyFixture {
	t.Helper()
	bin := testenv.RequireProxySQL(t)
	port, adminPort := freePortT(t), freePortT(t)
	d := renderAndServe(t, slaposRequest, "--proxysql-port", strconv.Itoa(port), "--proxysql-admin-port", strconv.Itoa(adminPort))
	f := &proxyFixture{d: d, bin: bin, admin: ipv6.HostPort{Host: "127.0.0.1", Port: adminPort},
		client: ipv6.HostPort{Host: "127.0.0.1", Port: port}}
	toml, err := os.ReadFile(filepath.Join(d.out, "cluster.d", "config-cluster1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []struct {
		key string
		v   *string
	}{{"proxysql-user", &f.adminUser}, {"proxysql-password", &f.adminPW}} {
		m := regexp.MustCompile(`(?m)^` + kv.key + ` = "([^"]+)"`).FindSubmatch(toml)
		if m == nil {
			t.Fatalf("no %s in the cluster's configuration", kv.key)
		}
		*kv.v = string(m[1])
	}
	if d.creds[f.admin.String()] == "" {
		t.Fatalf("no partition credential for the ProxySQL %s", f.admin)
	}
	return f
}

func (f *proxyFixture) config() agent.Config {
	return agent.Config{Kind: agent.KindProxySQL, Manager: f.d.plainURL(), Cluster: "cluster1", Addr: f.admin,
		Partition: f.d.out, Credential: f.d.creds[f.admin.String()], ProxySQL: f.bin, WatchWait: 10 * time.Second}
}

func (f *proxyFixture) adminDB(t *testing.T) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = f.adminUser, f.adminPW, "tcp", f.admin.String()
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// proxyID is the ProxySQL's id in the manager's API.
func (f *proxyFixture) proxyID(t *testing.T) string {
	t.Helper()
	var id string
	agentWait(t, 20*time.Second, "the manager lists its ProxySQL", func() bool {
		code, b, _ := f.d.api().Do(context.Background(), http.MethodGet, "/api/clusters/cluster1/topology/proxies", nil, 10*time.Second)
		var l []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if code != 200 || json.Unmarshal(b, &l) != nil || len(l) == 0 {
			return false
		}
		id = l[0].ID
		return true
	})
	return id
}

// proxyAction asks the manager's API to start or stop the ProxySQL.
func (f *proxyFixture) proxyAction(t *testing.T, id, action string) {
	t.Helper()
	code, b, err := f.d.api().Do(context.Background(), http.MethodPost, "/api/clusters/cluster1/proxies/"+id+"/actions/"+action, nil, time.Minute)
	if err != nil || code != 200 {
		t.Fatalf("proxy %s: %d %s %v", action, code, b, err)
	}
}

// waitProxyUp waits until the manager sees its ProxySQL running: its stop (cookie_waitstop)
// is handed over only then, as need-stop does.
func (f *proxyFixture) waitProxyUp(t *testing.T) {
	t.Helper()
	agentWait(t, 30*time.Second, "the manager sees the ProxySQL running", func() bool {
		code, b, _ := f.d.api().Do(context.Background(), http.MethodGet, "/api/clusters/cluster1/topology/proxies", nil, 10*time.Second)
		var l []struct {
			State string `json:"state"`
		}
		return code == 200 && json.Unmarshal(b, &l) == nil && len(l) > 0 && strings.EqualFold(l[0].State, "ProxyRunning")
	})
}

// mysqlGreeting reads the server's first packet at addr: a MySQL protocol-10 handshake
// tells a ProxySQL (or a MariaDB) answering there.
func mysqlGreeting(addr ipv6.HostPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if b[4] != 10 {
		return fmt.Errorf("greeting: protocol %d, want 10", b[4])
	}
	return nil
}

func proxyPid(l agent.ProxyLayout) int {
	b, err := os.ReadFile(l.PidFile())
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// processesWith counts the live processes whose command line holds s.
func processesWith(s string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				continue // a zombie runs nothing
			}
		}
		n++
	}
	return n
}

// TestSlapOSAgentRunsProxySQL runs the agent of the seed request's ProxySQL against the
// daemon serving the rendered request, with a real ProxySQL: the agent installs the bundle
// as SlapOS lays it out and starts ProxySQL as SlapOS does; ProxySQL answers on its admin
// port with the bundle's credentials and servers and on its clients' port; the API's stop
// and start reach it through the watch route; a killed ProxySQL is restarted; a second agent
// is refused; an agent on the legacy need-* routes starts and stops it on the manager's
// word; with the manager gone the agent logs one line and leaves ProxySQL running.
func TestSlapOSAgentRunsProxySQL(t *testing.T) {
	f := newProxyFixture(t)
	ctx := context.Background()
	a := startAgent(t, f.config())
	l := a.a.ProxyLayout()
	agentWait(t, 60*time.Second, "ProxySQL accepting on its admin and clients' ports", func() bool {
		return accepting(f.admin) && accepting(f.client)
	})

	// SlapOS' layout.
	for _, p := range []string{l.Cnf(), l.Tarball(), filepath.Join(l.DataDir(), "proxysql.db"), l.StdoutLog(),
		filepath.Join(l.SSLDir(), "ca-cert.pem")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("partition: %v", err)
		}
	}
	if st, err := os.Stat(l.Cnf()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600 (it holds passwords)", l.Cnf(), st.Mode(), err)
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(proxyPid(l)), "cmdline"))
	if got, want := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "),
		f.bin+" -f -c "+l.Cnf()+" -D "+l.DataDir()+" --reload"; got != want {
		t.Fatalf("ProxySQL runs as %q, want %q", got, want)
	}

	// The bundle's configuration in force: its admin credentials, listeners and servers.
	adm := f.adminDB(t)
	var ifaces string
	if err := adm.QueryRowContext(ctx, "SELECT variable_value FROM global_variables WHERE variable_name='mysql-interfaces'").Scan(&ifaces); err != nil {
		t.Fatalf("the bundle's admin credentials on the admin port: %v", err)
	}
	if !strings.Contains(ifaces, f.client.String()) {
		t.Fatalf("mysql-interfaces %q: not the bundle's (%s)", ifaces, f.client)
	}
	var servers int
	if err := adm.QueryRowContext(ctx, "SELECT COUNT(DISTINCT port) FROM mysql_servers WHERE port IN (2099, 2199, 2299, 2399)").Scan(&servers); err != nil || servers != 4 {
		t.Fatalf("mysql_servers: %d of the request's 4 databases, %v", servers, err)
	}
	if err := mysqlGreeting(f.client); err != nil {
		t.Fatalf("clients' port: %v", err)
	}

	// A second agent for the same ProxySQL is refused.
	other, err := agent.New(f.config())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(ctx); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent: %v", err)
	}

	// The API's stop: need-stop through the watch route; left stopped.
	id := f.proxyID(t)
	f.waitProxyUp(t)
	f.proxyAction(t, id, "stop")
	agentWait(t, 30*time.Second, "ProxySQL stopped on the manager's word", func() bool { return !accepting(f.admin) && !accepting(f.client) })
	time.Sleep(2 * time.Second) // a supervisor that restarted it would have done so by now
	if accepting(f.admin) || processesWith(l.Cnf()) != 0 {
		t.Fatal("the agent restarted a ProxySQL the manager stopped")
	}
	if st, _ := a.a.Status(ctx); st.Wanted || st.State != "stopped" {
		t.Fatalf("status after the manager's stop: %+v", st)
	}

	// The API's start.
	f.proxyAction(t, id, "start")
	agentWait(t, 30*time.Second, "ProxySQL started on the manager's word", func() bool { return accepting(f.admin) && accepting(f.client) })
	agentWait(t, 10*time.Second, "the agent reports the start it got through the watch route", func() bool {
		return strings.Contains(a.log.String(), "action=start") && strings.Contains(a.log.String(), "via=watch")
	})

	// kill -9: restarted, one copy.
	pid := proxyPid(l)
	if pid == 0 {
		t.Fatal("no pid file")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	agentWait(t, 30*time.Second, "ProxySQL restarted after a crash", func() bool {
		p := proxyPid(l)
		return p != 0 && p != pid && accepting(f.admin) && accepting(f.client)
	})
	if n := processesWith(l.Cnf()); n != 1 {
		t.Fatalf("%d ProxySQL processes on %s, want 1", n, l.Cnf())
	}

	t.Logf("the agent's log:\n%s", a.log.String())
	a.stop()
	if accepting(f.admin) || processesWith(l.Cnf()) != 0 {
		t.Fatal("ProxySQL still runs after its agent stopped")
	}

	// What proxy-need-start-stop.sh polls: need-start and need-stop at the proxy's own
	// address, an agent on the legacy routes that does not start by itself.
	no := false
	cfg := f.config()
	cfg.Legacy, cfg.PollInterval, cfg.Autostart = true, 300*time.Millisecond, &no
	b := startAgent(t, cfg)
	time.Sleep(time.Second)
	// The manager's proxy watch may already have asked for a start (it saw the ProxySQL
	// down once the first agent stopped it): that start is need-start's, not autostart's.
	if accepting(f.admin) && !strings.Contains(b.log.String(), "via=need-start") {
		t.Fatalf("an agent without autostart started ProxySQL by itself:\n%s", b.log.String())
	}
	f.proxyAction(t, id, "start")
	agentWait(t, 30*time.Second, "ProxySQL started through need-start", func() bool { return accepting(f.admin) && accepting(f.client) })
	f.waitProxyUp(t)
	f.proxyAction(t, id, "stop")
	agentWait(t, 30*time.Second, "ProxySQL stopped through need-stop", func() bool { return !accepting(f.admin) })
	// The agent reports the stop once ProxySQL has exited, a moment after its ports closed.
	agentWait(t, 10*time.Second, "the legacy agent's log to report need-start and need-stop", func() bool {
		lg := b.log.String()
		return strings.Contains(lg, "via=need-start") && strings.Contains(lg, "via=need-stop")
	})
	f.proxyAction(t, id, "start")
	agentWait(t, 30*time.Second, "ProxySQL started again through need-start", func() bool { return accepting(f.admin) })

	// The manager goes away: one line, ProxySQL left running.
	pid = proxyPid(l)
	f.d.stop()
	time.Sleep(6 * time.Second)
	if n := strings.Count(b.log.String(), "manager unreachable"); n != 1 {
		t.Fatalf("%d 'manager unreachable' lines, want 1:\n%s", n, b.log.String())
	}
	if !accepting(f.admin) || proxyPid(l) != pid {
		t.Fatal("ProxySQL did not keep running while the manager was down")
	}
	for _, s := range []string{f.d.adminPW, f.d.dbPW, f.adminPW, f.d.creds[f.admin.String()]} {
		if strings.Contains(a.log.String()+b.log.String(), s) {
			t.Fatal("a secret is in an agent's log")
		}
	}
	b.stop()
	if accepting(f.admin) || processesWith(l.Cnf()) != 0 {
		t.Fatal("ProxySQL still runs after its agent stopped")
	}
}

// supervisord is a supervisord owned by a test: its own configuration, socket and logs in a
// temporary directory, one program.
type supervisord struct {
	conf string
	ctl  string
}

func startSupervisord(t *testing.T, program, command string) *supervisord {
	t.Helper()
	bin := realtest.LookPath(t, "supervisord", "supervisor")
	ctl := realtest.LookPath(t, "supervisorctl", "supervisor")
	dir := t.TempDir()
	sock := filepath.Join(dir, "supervisor.sock")
	conf := filepath.Join(dir, "supervisord.conf")
	text := fmt.Sprintf(`[unix_http_server]
file=%[1]s
chmod=0700

[supervisord]
nodaemon=true
logfile=%[2]s/supervisord.log
pidfile=%[2]s/supervisord.pid
childlogdir=%[2]s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s

[program:%[3]s]
command=%[4]s
autostart=false
autorestart=unexpected
startsecs=1
stopwaitsecs=60
redirect_stderr=true
stdout_logfile=%[2]s/%[3]s.log
`, sock, dir, program, command)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() // owned by the test: ends with supervisord
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // supervisord stops its programs first
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	agentWait(t, 20*time.Second, "supervisord's socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return &supervisord{conf: conf, ctl: ctl}
}

// status is the program's pid (0 when it does not run) per supervisorctl.
func (s *supervisord) pid(t *testing.T, program string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, s.ctl, "-c", s.conf, "status", program).CombinedOutput()
	f := strings.Fields(string(out))
	if len(f) >= 4 && f[1] == "RUNNING" && f[2] == "pid" {
		p, _ := strconv.Atoi(strings.TrimSuffix(f[3], ","))
		return p
	}
	return 0
}

// TestSlapOSAgentSupervisorctl drives a ProxySQL run by a real supervisord, as SlapOS runs
// it (program proxysql-<cluster>), through supervisorctl: the agent installs the bundle and
// starts the program; the manager's stop, start and restart arrive through the watch route
// and supervisorctl; a start while it runs starts no second copy; a crash is restarted by
// supervisord, not by the agent; a second agent is refused; the agent stopping leaves the
// program to supervisord.
func TestSlapOSAgentSupervisorctl(t *testing.T) {
	f := newProxyFixture(t)
	ctx := context.Background()
	l := agent.ProxyLayout{Root: f.d.out, Cluster: "cluster1"}
	const program = "proxysql-cluster1"
	sd := startSupervisord(t, program, f.bin+" -f -c "+l.Cnf()+" -D "+l.DataDir()+" --reload")
	cfg := f.config()
	cfg.Supervisord = &agent.Supervisord{Program: program, Ctl: sd.ctl, Conf: sd.conf, Timeout: time.Minute}
	a := startAgent(t, cfg)
	agentWait(t, 60*time.Second, "ProxySQL started through supervisorctl", func() bool {
		return sd.pid(t, program) != 0 && accepting(f.admin) && accepting(f.client)
	})
	if st, err := a.a.Status(ctx); err != nil || st.State != "running" || st.Pid != sd.pid(t, program) {
		t.Fatalf("the agent's status: %+v %v, want running with supervisord's pid %d", st, err, sd.pid(t, program))
	}
	if _, err := os.Stat(l.PidFile()); err == nil {
		t.Fatal("the agent wrote a pid file: it ran ProxySQL itself")
	}

	// A second agent is refused.
	other, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(ctx); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent: %v", err)
	}

	// Stop from the manager.
	id := f.proxyID(t)
	f.waitProxyUp(t)
	f.proxyAction(t, id, "stop")
	agentWait(t, 60*time.Second, "program stopped through supervisorctl", func() bool {
		return sd.pid(t, program) == 0 && !accepting(f.admin)
	})
	agentWait(t, 10*time.Second, "the agent reports the stop", func() bool {
		return strings.Contains(a.log.String(), "action=stop") && strings.Contains(a.log.String(), "verb=stop")
	})

	// Start from the manager.
	f.proxyAction(t, id, "start")
	agentWait(t, 60*time.Second, "program started through supervisorctl", func() bool {
		return sd.pid(t, program) != 0 && accepting(f.admin) && accepting(f.client)
	})
	pid := sd.pid(t, program)

	// The manager's start again while it runs: no second copy, the same process.
	starts := strings.Count(a.log.String(), "action=start")
	f.waitProxyUp(t)
	f.proxyAction(t, id, "start")
	agentWait(t, 30*time.Second, "the second start reaches the agent", func() bool {
		return strings.Count(a.log.String(), "action=start") > starts
	})
	if p := sd.pid(t, program); p != pid || processesWith(l.Cnf()) != 1 {
		t.Fatalf("after a start of a running program: pid %d (was %d), %d processes", p, pid, processesWith(l.Cnf()))
	}

	// Restart from the manager: its cookie, handed over by the watch route.
	node, err := slapos.NodeIn(filepath.Join(f.d.out, "var", "lib"), "cluster1", f.admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Set(slapos.CookieRestart); err != nil {
		t.Fatal(err)
	}
	agentWait(t, 60*time.Second, "program restarted through supervisorctl", func() bool {
		p := sd.pid(t, program)
		return p != 0 && p != pid && accepting(f.admin)
	})
	agentWait(t, 10*time.Second, "the agent reports the restart", func() bool {
		return strings.Contains(a.log.String(), "action=restart") && strings.Contains(a.log.String(), "verb=restart")
	})

	// A crash: supervisord restarts it, one copy.
	pid = sd.pid(t, program)
	syscall.Kill(pid, syscall.SIGKILL)
	agentWait(t, 60*time.Second, "supervisord restarted the program", func() bool {
		p := sd.pid(t, program)
		return p != 0 && p != pid && accepting(f.admin)
	})
	if n := processesWith(l.Cnf()); n != 1 {
		t.Fatalf("%d ProxySQL processes, want 1", n)
	}

	// The agent stopping leaves the program to supervisord.
	t.Logf("the agent's log:\n%s", a.log.String())
	pid = sd.pid(t, program)
	a.stop()
	if sd.pid(t, program) != pid || !accepting(f.admin) {
		t.Fatal("the agent's stop touched the supervisord program")
	}
	for _, s := range []string{f.d.adminPW, f.d.dbPW, f.adminPW, f.d.creds[f.admin.String()]} {
		if strings.Contains(a.log.String(), s) {
			t.Fatal("a secret is in the agent's log")
		}
	}
}
