package orchestrator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// TestSQLShutdownMaster stops a real master with SQL: MariaDB 10.11 gets SHUTDOWN WAIT FOR
// ALL SLAVES (its error log says so), the call returns and the process exits; the replica
// keeps running.
func TestSQLShutdownMaster(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	m, r := c.Master(), c.Replicas()[0]
	version := m.QueryString(t, "SELECT @@version")
	ma, _ := ipv6.ParseHostPort(m.Addr(), 3306)
	ra, _ := ipv6.ParseHostPort(r.Addr(), 3306)
	s := config.Defaults()
	s.DBServersHosts = ipv6.FormatList([]ipv6.HostPort{ma, ra})
	s.DBServersCredential = testenv.RootUser + ":" + testenv.RootPassword
	s.DBServersConnectTimeout = 2
	stop, err := orchestrator.SQLStopFrom(&s)
	if err != nil {
		t.Fatal(err)
	}
	snap := &topology.Snapshot{Master: 0, Servers: []topology.Server{
		{Addr: ma, State: topology.StateMaster, Version: version},
		{Addr: ra, State: topology.StateSlave, Version: version},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stop.Stop(ctx, ma, snap); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for m.Running() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m.Running() {
		t.Fatalf("master still running after SHUTDOWN:\n%s", m.ErrorLog())
	}
	if !r.Running() {
		t.Fatal("replica stopped too")
	}
	if log := m.ErrorLog(); !strings.Contains(strings.ToLower(log), "shutdown") {
		t.Fatalf("no shutdown in the error log:\n%s", log)
	}
}
