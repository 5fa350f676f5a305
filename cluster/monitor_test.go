package cluster

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// Tests on real MariaDB servers (internal/testenv starts Debian's mariadbd).

func monitorFor(t *testing.T, c *testenv.Cluster, ipv6Hosts bool, mutate func(*MonitorConfig)) (*Monitor, *eventlog.Log) {
	t.Helper()
	var hosts []ipv6.HostPort
	for _, s := range c.Servers {
		a := s.Addr()
		if ipv6Hosts {
			a = s.Addr6()
		}
		hp, err := ipv6.ParseHostPort(a, 3306)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, hp)
	}
	cfg := MonitorConfig{
		Cluster: "c1", Hosts: hosts, Ticker: time.Second, ProbeTimeout: time.Second,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	events, err := eventlog.Open(filepath.Join(t.TempDir(), "events.jsonl"), 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	log := logrus.New()
	log.SetOutput(io.Discard) // events are asserted; the log lines would only drown go test's output
	m := NewMonitor(cfg, MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), events, log)
	t.Cleanup(m.Close)
	return m, events
}

func requireStates(t *testing.T, s *topology.Snapshot, want string) {
	t.Helper()
	if got := states(s); got != want {
		t.Fatalf("states = %s, want %s (problems %s)", got, want, codes(s.Problems))
	}
}

// waitFor ticks until cond holds or the deadline passes; it returns the last snapshot.
func waitFor(t *testing.T, m *Monitor, within time.Duration, what string, cond func(*topology.Snapshot) bool) *topology.Snapshot {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := m.Tick(context.Background())
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v; states %s, problems %s", what, within, states(s), codes(s.Problems))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMonitorDiscoversRealCluster(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, _ := monitorFor(t, c, false, nil)
	s := m.Tick(context.Background())
	requireStates(t, s, "Master,Slave,Slave")
	master, ok := s.MasterServer()
	if !ok || master.Addr.String() != c.Master().Addr() || s.Kind != topology.KindMasterSlave || !s.IsFailable || !s.IsAllDBUp {
		t.Fatalf("master %v kind %s failable %v allup %v", master, s.Kind, s.IsFailable, s.IsAllDBUp)
	}
	if master.BinlogDumpThreads != 2 || master.ReadOnly {
		t.Fatalf("master facts: dump threads %d read_only %v", master.BinlogDumpThreads, master.ReadOnly)
	}
	for _, r := range s.Servers[1:] {
		if r.Role != topology.RoleReplica || !r.ReadOnly || len(r.Replications) != 1 || r.Replications[0].Source.String() != c.Master().Addr() {
			t.Fatalf("replica %s: %+v", r.Addr, r)
		}
	}
	if len(s.Problems) != 0 {
		t.Fatalf("problems on a healthy cluster: %s", codes(s.Problems))
	}
}

func TestMonitorIPv6Cluster(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicateOverIPv6())
	m, _ := monitorFor(t, c, true, nil)
	s := m.Tick(context.Background())
	requireStates(t, s, "Master,Slave,Slave")
	master, _ := s.MasterServer()
	if !master.Addr.IsIPv6() || master.Addr.String() != c.Master().Addr6() {
		t.Fatalf("master = %s, want %s", master.Addr, c.Master().Addr6())
	}
	if len(s.Problems) != 0 {
		t.Fatalf("problems: %s", codes(s.Problems))
	}
}

func TestMonitorStoppedSQLThreadIsSlaveErr(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := monitorFor(t, c, false, nil)
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Slave")
	c.Servers[1].Exec(t, "STOP SLAVE SQL_THREAD")
	s := m.Tick(context.Background())
	requireStates(t, s, "Master,SlaveErr,Slave")
	if codes(s.Problems) != "BrokenReplication@"+c.Servers[1].Addr() {
		t.Fatalf("problems = %s", codes(s.Problems))
	}
	found := false
	for _, e := range events.Recent("c1", 0) {
		if e.Kind == "state" && e.Server == c.Servers[1].Addr() && e.OldState == "Slave" && e.NewState == "SlaveErr" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no Slave -> SlaveErr event in %+v", events.Recent("", 0))
	}
	c.Servers[1].Exec(t, "START SLAVE SQL_THREAD")
	waitFor(t, m, 10*time.Second, "replica back to Slave", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
}

func TestMonitorKilledMasterGoesSuspectThenFailed(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := monitorFor(t, c, false, func(mc *MonitorConfig) { mc.MaxFail = 3 })
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Slave")
	c.Master().Kill()
	for i := 1; i <= 2; i++ {
		s := m.Tick(context.Background())
		if s.Servers[0].State != topology.StateSuspect || s.Servers[0].FailCount != i {
			t.Fatalf("after %d failed probes: %s fail count %d", i, s.Servers[0].State, s.Servers[0].FailCount)
		}
		if ms, ok := s.MasterServer(); !ok || ms.Addr.String() != c.Master().Addr() {
			t.Fatalf("a suspect master must stay the master")
		}
	}
	// The replicas notice the loss within their connect retry; Failed needs the third probe.
	s := waitFor(t, m, 15*time.Second, "dead master", func(s *topology.Snapshot) bool {
		return len(s.Problems) > 0 && s.Problems[0].Code == topology.DeadMaster
	})
	if s.Servers[0].State != topology.StateFailed || s.Servers[0].FailCount < 3 {
		t.Fatalf("master %s fail count %d", s.Servers[0].State, s.Servers[0].FailCount)
	}
	var seen []string
	for _, e := range events.Recent("c1", 0) {
		if e.Server == c.Master().Addr() && e.Kind == "state" {
			seen = append(seen, e.OldState+">"+e.NewState)
		}
	}
	if got := strings.Join(seen, ","); got != ">Master,Master>Suspect,Suspect>Failed" {
		t.Fatalf("master state events = %s", got)
	}
}

func TestMonitorKilledReplicaGoesSuspectThenFailed(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, _ := monitorFor(t, c, false, func(mc *MonitorConfig) { mc.MaxFail = 2 })
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Slave")
	c.Servers[2].Kill()
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Suspect")
	s := m.Tick(context.Background())
	requireStates(t, s, "Master,Slave,Failed")
	if codes(s.Problems) != "ReplicaDown@"+c.Servers[2].Addr() {
		t.Fatalf("problems = %s", codes(s.Problems))
	}
}

func TestMonitorSetsWritableReplicaBackReadOnly(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := monitorFor(t, c, false, nil)
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Slave")
	c.Servers[2].Exec(t, "SET GLOBAL read_only = 0")
	s := m.Tick(context.Background())
	if codes(s.Problems) != "WritableReplica@"+c.Servers[2].Addr() {
		t.Fatalf("problems = %s", codes(s.Problems))
	}
	if got := c.Servers[2].QueryString(t, "SELECT @@read_only"); got != "1" {
		t.Fatalf("read_only after enforcement = %s", got)
	}
	var enforced bool
	for _, e := range events.Recent("c1", 0) {
		enforced = enforced || (e.Kind == "enforce" && e.Server == c.Servers[2].Addr() && e.Error == "")
	}
	if !enforced {
		t.Fatalf("no enforcement event: %+v", events.Recent("", 0))
	}
	if s := m.Tick(context.Background()); len(s.Problems) != 0 {
		t.Fatalf("problems after enforcement: %s", codes(s.Problems))
	}
}

func TestMonitorMakesReadOnlyMasterWritable(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m, _ := monitorFor(t, c, false, nil)
	c.Master().Exec(t, "SET GLOBAL read_only = 1")
	m.Tick(context.Background())
	if got := c.Master().QueryString(t, "SELECT @@read_only"); got != "0" {
		t.Fatalf("master read_only after enforcement = %s", got)
	}
}

func TestMonitorPausedDoesNotEnforce(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m, _ := monitorFor(t, c, false, nil)
	m.Pause(true)
	c.Servers[1].Exec(t, "SET GLOBAL read_only = 0")
	m.Tick(context.Background())
	if got := c.Servers[1].QueryString(t, "SELECT @@read_only"); got != "0" {
		t.Fatalf("paused monitor enforced read_only")
	}
}

// A SIGSTOPped master does not answer; its replicas keep their connection open, so the
// manager must not call it dead while the replicas' IO threads still say Yes.
func TestMonitorStalledMasterWithConnectedReplicasIsNotDead(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, _ := monitorFor(t, c, false, func(mc *MonitorConfig) { mc.MaxFail = 2; mc.ProbeTimeout = 300 * time.Millisecond })
	requireStates(t, m.Tick(context.Background()), "Master,Slave,Slave")
	c.Master().Stop()
	defer c.Master().Cont()
	for i := 0; i < 3; i++ {
		s := m.Tick(context.Background())
		if len(s.Problems) == 0 || s.Problems[0].Code == topology.DeadMaster {
			t.Fatalf("tick %d: problems %s", i, codes(s.Problems))
		}
	}
	c.Master().Cont()
	waitFor(t, m, 10*time.Second, "master back", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
}

func TestMonitorRunStopsWithContext(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m, _ := monitorFor(t, c, false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for m.Snapshot() == nil || m.Snapshot().Tick < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not tick")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	requireStates(t, m.Snapshot(), "Master,Slave")
}
