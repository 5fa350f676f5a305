package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/agent"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/slaposim"
	"replication-manager-pro/topology"
)

// slaposDaemon is the daemon run in-process on a rendered request, stoppable mid-test.
type slaposDaemon struct {
	out               string
	apiPort, httpPort int
	adminPW, dbPW     string
	creds             map[string]string // address -> partition credential
	log               *lockedBuffer
	stop              func()
}

// renderAndServe renders params (with more render flags) into a temporary directory and
// runs the daemon on it.
func renderAndServe(t testing.TB, params string, renderArgs ...string) *slaposDaemon {
	t.Helper()
	d := &slaposDaemon{out: t.TempDir(), creds: map[string]string{}, log: &lockedBuffer{}}
	render := newRootCmd()
	var rout lockedBuffer
	render.SetOut(&rout)
	render.SetErr(&rout)
	render.SetArgs(append([]string{"slapos", "render", "--parameters", params, "--out", d.out}, renderArgs...))
	if err := render.Execute(); err != nil {
		t.Fatalf("render: %v\n%s", err, rout.String())
	}
	cfgText, _ := os.ReadFile(filepath.Join(d.out, "config.toml"))
	m := regexp.MustCompile(`api-credentials = "admin:([^"]+)"`).FindSubmatch(cfgText)
	if m == nil {
		t.Fatal("no api-credentials in config.toml")
	}
	d.adminPW = string(m[1])
	var sec struct {
		Clusters map[string]struct{ DB string } `json:"clusters"`
	}
	b, _ := os.ReadFile(filepath.Join(d.out, "secrets.json"))
	if err := json.Unmarshal(b, &sec); err != nil {
		t.Fatal(err)
	}
	d.dbPW = sec.Clusters["cluster1"].DB
	var creds []slapos.NodeCredential
	b, _ = os.ReadFile(filepath.Join(d.out, "partition-credentials.json"))
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		d.creds[c.Address] = c.Credential
	}
	d.apiPort, d.httpPort = freePortT(t), freePortT(t)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(d.log)
	root.SetErr(d.log)
	root.SetArgs([]string{"monitor", "--config", filepath.Join(d.out, "config.toml"),
		"--api-port", fmt.Sprint(d.apiPort), "--http-port", fmt.Sprint(d.httpPort), "--monitoring-ticker", "1"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	}
	t.Cleanup(d.stop)
	agentWait(t, 20*time.Second, "the daemon's API", func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.httpPort)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return d
}

func (d *slaposDaemon) api() *slaposim.API {
	return slaposim.NewAPI(fmt.Sprintf("https://127.0.0.1:%d", d.apiPort), "admin", d.adminPW)
}

func (d *slaposDaemon) plainURL() string { return fmt.Sprintf("http://127.0.0.1:%d", d.httpPort) }

func freePortT(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func agentWait(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runningAgent is an agent run in-process by a test, which owns its goroutine.
type runningAgent struct {
	a    *agent.Agent
	log  *lockedBuffer
	stop func()
}

func startAgent(t testing.TB, cfg agent.Config) *runningAgent {
	t.Helper()
	lb := &lockedBuffer{}
	log := logrus.New()
	log.SetOutput(lb)
	cfg.Log = log
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second // a shutdown that hangs is killed, and logged
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	r := &runningAgent{a: a, log: lb}
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("agent did not stop; its log:\n%s", lb.String())
		}
	}
	t.Cleanup(r.stop)
	return r
}

func pidOf(t testing.TB, l agent.Layout) int {
	t.Helper()
	b, err := os.ReadFile(l.PidFile())
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

func accepting(addr ipv6.HostPort) bool {
	c, err := net.DialTimeout("tcp", addr.String(), 300*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestSlapOSAgentRunsPartition runs the partition agent of the seed request's first two
// databases against the daemon serving the rendered request, with real mariadbd: the agent
// installs the bundle as SlapOS lays it out, creates the data directory with the manager's
// account and starts mariadbd on the generated configuration; the API's stop (SQL SHUTDOWN)
// leaves it stopped, the API's start reaches it through the watch route; a killed mariadbd
// is restarted; a second agent on the partition is refused; an agent polling the legacy
// need-* routes starts its database on the manager's word; with the manager gone the agent
// logs one line and leaves mariadbd running.
func TestSlapOSAgentRunsPartition(t *testing.T) {
	realtest.LookPath(t, "mariadbd", "mariadb-server")
	d := renderAndServe(t, slaposRequest)
	ctx := context.Background()
	db0, db1 := ipv6.HostPort{Host: "::1", Port: 2099}, ipv6.HostPort{Host: "::1", Port: 2199}
	part := func(i int) string { return filepath.Join(d.out, "partitions", fmt.Sprintf("cluster1-mariadb-%d", i)) }
	cfg0 := agent.Config{Manager: d.plainURL(), Cluster: "cluster1", Addr: db0, Partition: part(0),
		Credential: d.creds[db0.String()], HeartbeatUser: slapos.HeartbeatUser, WatchWait: 10 * time.Second}
	a0 := startAgent(t, cfg0)
	l0 := a0.a.Layout()
	agentWait(t, 90*time.Second, "mariadbd of partition 0 accepting connections", func() bool { return accepting(db0) })

	// SlapOS' layout, and the generated configuration in force.
	for _, p := range []string{l0.MyCnf(), l0.DBJobCnf(), filepath.Join(l0.System(), "logs"), filepath.Join(part(0), "tmp", "config", "config.tar.gz")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("partition: %v", err)
		}
	}
	if target, err := os.Readlink(filepath.Join(part(0), "var", "system")); err != nil || target != l0.System() {
		t.Errorf("var/system -> %q, %v", target, err)
	}
	srv, err := mariadb.Open(db0, "repman", d.dbPW, mariadb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var datadir, ssl string
	var ro int
	if err := srv.DB().QueryRowContext(ctx, "SELECT @@datadir, @@have_ssl, @@read_only").Scan(&datadir, &ssl, &ro); err != nil {
		t.Fatalf("the manager's account on the new server: %v", err)
	}
	if datadir != l0.DataDir()+"/" || ssl != "YES" || ro != 1 {
		t.Fatalf("datadir %q have_ssl %q read_only %d: not the bundle's configuration (tags readonly, ssl)", datadir, ssl, ro)
	}
	var gtid string
	srv.DB().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid)
	if gtid != "" {
		t.Fatalf("the new server has binary log events (%q): the accounts would be errant transactions", gtid)
	}

	// A second agent on the same partition is refused.
	other, err := agent.New(cfg0)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(ctx); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent on the partition: %v", err)
	}

	// Stop through the API: SQL SHUTDOWN; the agent leaves it stopped.
	api := d.api()
	id0 := topology.ServerIDFor(db0)
	agentWait(t, 20*time.Second, "the manager sees db0 running", func() bool {
		code, b, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/servers", nil, 10*time.Second)
		return code == 200 && strings.Contains(string(b), id0) && !strings.Contains(string(b), `"Suspect"`) && strings.Contains(string(b), "StandAlone")
	})
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id0+"/actions/stop", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("stop: %d %s %v", code, b, err)
	}
	agentWait(t, 60*time.Second, "db0 stopped", func() bool { return !accepting(db0) })
	time.Sleep(2 * time.Second) // a supervisor that restarted it would have done so by now
	if accepting(db0) {
		t.Fatal("the agent restarted a database the manager stopped")
	}
	if st, _ := a0.a.Status(ctx); st.Wanted || st.State != "stopped" {
		t.Fatalf("status after the manager's stop: %+v", st)
	}

	// Start through the API: the cookie reaches the agent through the watch route.
	t0 := time.Now()
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id0+"/actions/start", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("start: %d %s %v", code, b, err)
	}
	agentWait(t, 60*time.Second, "db0 started by the manager's word", func() bool { return accepting(db0) })
	t.Logf("API start -> mariadbd accepting connections: %v (watch route)", time.Since(t0).Round(time.Millisecond))
	agentWait(t, 10*time.Second, "the agent reports the start it got through the watch route", func() bool {
		return strings.Contains(a0.log.String(), "action=start") && strings.Contains(a0.log.String(), "via=watch")
	})

	// A crash is restarted by the supervisor.
	pid := pidOf(t, l0)
	if pid == 0 {
		t.Fatal("no pid file")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	agentWait(t, 60*time.Second, "db0 restarted after a crash", func() bool {
		p := pidOf(t, l0)
		return p != 0 && p != pid && accepting(db0)
	})
	// What the agent did is in the manager's event log, through the report route.
	for _, want := range []string{"agent: start (watch): done: pid ", "agent: crash (supervisor): failed",
		"agent: crash-restart (supervisor): done: pid ", "agent: exit (supervisor): done: clean shutdown"} {
		agentWait(t, 20*time.Second, "the manager's events show "+strconv.Quote(want), func() bool {
			code, b, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/logs?n=500", nil, 10*time.Second)
			return code == 200 && strings.Contains(string(b), want) && strings.Contains(string(b), `"kind":"agent"`)
		})
	}

	// An agent on the legacy routes, not starting by itself: the manager's start.
	f := false
	cfg1 := agent.Config{Manager: d.plainURL(), Cluster: "cluster1", Addr: db1, Partition: part(1),
		Credential: d.creds[db1.String()], HeartbeatUser: slapos.HeartbeatUser, Legacy: true,
		PollInterval: 300 * time.Millisecond, Autostart: &f}
	a1 := startAgent(t, cfg1)
	agentWait(t, 60*time.Second, "partition 1 installed", func() bool { return a1.a.Layout().Bootstrapped() })
	time.Sleep(time.Second)
	if accepting(db1) {
		t.Fatal("an agent without autostart started mariadbd by itself")
	}
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+topology.ServerIDFor(db1)+"/actions/start", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("start db1: %d %s %v", code, b, err)
	}
	agentWait(t, 60*time.Second, "db1 started through need-start", func() bool { return accepting(db1) })
	agentWait(t, 10*time.Second, "the agent reports the start it got through need-start", func() bool {
		return strings.Contains(a1.log.String(), "via=need-start")
	})

	// The manager goes away: one line, mariadbd left running.
	pid = pidOf(t, l0)
	d.stop()
	time.Sleep(6 * time.Second)
	if n := strings.Count(a0.log.String(), "manager unreachable"); n != 1 {
		t.Fatalf("%d 'manager unreachable' lines, want 1:\n%s", n, a0.log.String())
	}
	if !accepting(db0) || pidOf(t, l0) != pid {
		t.Fatal("mariadbd did not keep running while the manager was down")
	}
	for _, s := range []string{d.adminPW, d.dbPW, d.creds[db0.String()]} {
		if strings.Contains(a0.log.String()+a1.log.String(), s) {
			t.Fatal("a secret is in an agent's log")
		}
	}
	a0.stop()
	if accepting(db0) {
		t.Fatal("mariadbd still runs after its agent stopped")
	}
}
