package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// TestReplicaControlOnRealReplicas: a replica whose SQL thread stopped on a duplicate key
// skips exactly the transaction it stopped on and replicates on; the skip is refused on a
// healthy replica, and its step run again (a resumed plan) skips nothing more; stop and
// start of another replica's replication.
func TestReplicaControlOnRealReplicas(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	master := c.Master()
	master.Exec(t, "CREATE DATABASE rc")
	master.Exec(t, "CREATE TABLE rc.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB")
	c.WaitSync(t)
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Mode = "manual" })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	healthy, _ := ipv6.ParseHostPort(c.Servers[1].Addr(), 3306)
	broken, _ := ipv6.ParseHostPort(c.Servers[2].Addr(), 3306)
	ctx := context.Background()

	// A row written on the replica alone makes the master's same row fail there.
	c.Servers[2].Exec(t, "SET STATEMENT sql_log_bin=0 FOR INSERT INTO rc.t VALUES (5, 'replica only')")
	master.Exec(t, "INSERT INTO rc.t VALUES (5, 'master')")
	master.Exec(t, "INSERT INTO rc.t VALUES (6, 'after')")
	waitFor(t, m, 10*time.Second, "the replica's SQL thread stopped on the duplicate", func(s *topology.Snapshot) bool {
		srv, ok := s.Find(broken)
		if !ok || !srv.IsReplica() {
			return false
		}
		r, _ := srv.PrimaryReplication()
		return r.SQL == topology.ThreadNo && strings.Contains(r.LastSQLError, "Duplicate")
	})

	if p, _, err := m.Act(ctx, ActionRequest{Kind: PlanSkipEvent, Target: &healthy}); !errors.Is(err, ErrRefused) || !strings.Contains(p.Refused, "runs") {
		t.Fatalf("skip on a healthy replica: %v %q", err, p.Refused)
	}
	p, res, err := m.Act(ctx, ActionRequest{Kind: PlanSkipEvent, Target: &broken})
	if err != nil {
		t.Fatalf("skip: %v (%+v)", err, res)
	}
	if !strings.Contains(p.Steps[0].Detail, "1062") {
		t.Errorf("the step does not name the error: %q", p.Steps[0].Detail)
	}
	pos := master.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := c.Servers[2].QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
		t.Fatalf("the replica did not catch up after the skip: %s", got)
	}
	if v := c.Servers[2].QueryString(t, "SELECT GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id) FROM rc.t"); v != "5=replica only,6=after" {
		t.Fatalf("replica rows %q: want its own row 5 kept and row 6 replicated", v)
	}
	// Run again, as a resumed plan would: nothing more is skipped.
	master.Exec(t, "INSERT INTO rc.t VALUES (7, 'later')")
	skipped, err := m.executor().replicaControlStep(ctx, p.Steps[0])
	if err != nil || skipped == "" {
		t.Fatalf("the step run again: %q %v", skipped, err)
	}
	c.WaitSync(t)
	if v := c.Servers[2].QueryString(t, "SELECT COUNT(*) FROM rc.t WHERE id=7"); v != "1" {
		t.Fatal("a transaction was skipped by the step run again")
	}

	// Stop, then start, the healthy replica's replication.
	if _, _, err := m.Act(ctx, ActionRequest{Kind: PlanStopReplica, Target: &healthy}); err != nil {
		t.Fatal(err)
	}
	if st := c.Servers[1].SlaveStatus(t); st["Slave_IO_Running"] != "No" || st["Slave_SQL_Running"] != "No" {
		t.Fatalf("after stop-replica: IO %s SQL %s", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
	waitFor(t, m, 5*time.Second, "the monitor sees it stopped", func(s *topology.Snapshot) bool {
		srv, _ := s.Find(healthy)
		r, _ := srv.PrimaryReplication()
		return r.IO == topology.ThreadNo
	})
	if p, _, err := m.Act(ctx, ActionRequest{Kind: PlanStopReplica, Target: &healthy}); !errors.Is(err, ErrRefused) {
		t.Fatalf("stop twice: %v %q", err, p.Refused)
	}
	if _, _, err := m.Act(ctx, ActionRequest{Kind: PlanStartReplica, Target: &healthy}); err != nil {
		t.Fatal(err)
	}
	c.WaitSync(t)
	if p, _, err := m.Act(ctx, ActionRequest{Kind: PlanStopReplica, Target: &ipv6.HostPort{Host: "127.0.0.1", Port: 1}}); !errors.Is(err, ErrRefused) || p.Code != RefuseUnknownServer {
		t.Fatalf("unknown server: %v %+v", err, p)
	}
	masterAddr, _ := ipv6.ParseHostPort(master.Addr(), 3306)
	if p, _, err := m.Act(ctx, ActionRequest{Kind: PlanStopReplica, Target: &masterAddr}); !errors.Is(err, ErrRefused) || !strings.Contains(p.Refused, "nobody") {
		t.Fatalf("stop-replica on the master: %v %q", err, p.Refused)
	}
}
