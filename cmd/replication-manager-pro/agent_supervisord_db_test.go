package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/agent"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/topology"
)

// A database partition whose mariadbd runs under supervisord, as SlapOS' own partitions run
// it: the agent creates the data directory, then drives the program with supervisorctl (it
// never runs mariadbd itself); the manager's stop (SQL SHUTDOWN, a clean exit supervisord
// leaves alone) and start (the watch route) arrive, a start of the running program makes no
// second copy, and the start is reported to the manager.
func TestSlapOSAgentSupervisorctlDatabase(t *testing.T) {
	mariadbd := realtest.LookPath(t, "mariadbd", "mariadb-server")
	d := renderAndServe(t, slaposRequest)
	ctx := context.Background()
	db0 := ipv6.HostPort{Host: "::1", Port: 2099}
	part := filepath.Join(d.out, "partitions", "cluster1-mariadb-0")
	l := agent.Layout{Root: part}
	const program = "mariadb"
	command := mariadbd + " --defaults-file=" + l.MyCnf()
	if os.Geteuid() == 0 {
		command += " --user=root"
	}
	sd := startSupervisord(t, program, command)
	cfg := agent.Config{Manager: d.plainURL(), Cluster: "cluster1", Addr: db0, Partition: part,
		Credential: d.creds[db0.String()], HeartbeatUser: slapos.HeartbeatUser, WatchWait: 10 * time.Second,
		Supervisord: &agent.Supervisord{Program: program, Ctl: sd.ctl, Conf: sd.conf, Timeout: time.Minute}}
	a := startAgent(t, cfg)
	agentWait(t, 90*time.Second, "mariadbd started through supervisorctl", func() bool {
		return sd.pid(t, program) != 0 && accepting(db0)
	})
	if !l.Bootstrapped() {
		t.Fatal("the agent did not create the data directory before starting the program")
	}
	if st, err := a.a.Status(ctx); err != nil || st.State != "running" || st.Pid != sd.pid(t, program) {
		t.Fatalf("the agent's status: %+v %v, want running with supervisord's pid %d", st, err, sd.pid(t, program))
	}
	if n := processesWith(l.MyCnf()); n != 1 {
		t.Fatalf("%d mariadbd processes on the partition's my.cnf, want 1", n)
	}

	// The manager's stop: SQL SHUTDOWN, a clean exit: supervisord leaves it stopped.
	api := d.api()
	id := topology.ServerIDFor(db0)
	agentWait(t, 30*time.Second, "the manager sees db0 running", func() bool {
		code, b, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/servers", nil, 10*time.Second)
		return code == 200 && strings.Contains(string(b), id) && strings.Contains(string(b), "StandAlone")
	})
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id+"/actions/stop", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("stop: %d %s %v", code, b, err)
	}
	agentWait(t, 60*time.Second, "db0 stopped", func() bool { return sd.pid(t, program) == 0 && !accepting(db0) })
	time.Sleep(2 * time.Second)
	if sd.pid(t, program) != 0 {
		t.Fatal("the program was started again after the manager's stop")
	}

	// The manager's start, through the watch route, then once more while it runs.
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id+"/actions/start", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("start: %d %s %v", code, b, err)
	}
	agentWait(t, 60*time.Second, "db0 started by the manager's word", func() bool { return sd.pid(t, program) != 0 && accepting(db0) })
	pid := sd.pid(t, program)
	agentWait(t, 30*time.Second, "the manager sees db0 running again", func() bool {
		code, b, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/servers", nil, 10*time.Second)
		return code == 200 && strings.Contains(string(b), "StandAlone")
	})
	starts := strings.Count(a.log.String(), "action=start")
	if code, b, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id+"/actions/start", nil, time.Minute); err != nil || code != 200 {
		t.Fatalf("second start: %d %s %v", code, b, err)
	}
	agentWait(t, 30*time.Second, "the second start reaches the agent", func() bool {
		return strings.Count(a.log.String(), "action=start") > starts
	})
	if p := sd.pid(t, program); p != pid || processesWith(l.MyCnf()) != 1 {
		t.Fatalf("after a start of a running program: pid %d (was %d), %d processes", p, pid, processesWith(l.MyCnf()))
	}
	agentWait(t, 20*time.Second, "the manager's events show the start", func() bool {
		code, b, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/logs?n=500", nil, 10*time.Second)
		return code == 200 && strings.Contains(string(b), "agent: start (watch): done")
	})
	// Stopping the agent leaves supervisord's program running.
	a.stop()
	if !accepting(db0) || sd.pid(t, program) != pid {
		t.Fatal("stopping the agent stopped supervisord's program")
	}
}
