package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Replication trees on real MariaDB servers: relays and the replicas under them survive the
// death of the master and of a relay.

// assertTree checks that each server replicates, with both threads running, from the
// server the map names (by test index), and that every server but the master is read-only.
func assertTree(t *testing.T, c *testenv.Cluster, master int, parents map[int]int) {
	t.Helper()
	if ro := c.Servers[master].QueryString(t, "SELECT @@read_only"); ro != "0" {
		t.Errorf("master s%d read_only = %s", master, ro)
	}
	for child, parent := range parents {
		s, p := c.Servers[child], c.Servers[parent]
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := slaveStatus(t, s)
			src := st["Master_Host"] + ":" + st["Master_Port"]
			ro := s.QueryString(t, "SELECT @@read_only") // a restarted server comes back writable until the monitor corrects it
			if src == p.Addr() && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" && ro == "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("s%d replicates from %s (IO %s, SQL %s, %s%s; read_only %s), want s%d %s", child, src, st["Slave_IO_Running"], st["Slave_SQL_Running"],
					st["Last_IO_Error"], st["Last_SQL_Error"], ro, parent, p.Addr())
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func ignoring(c *testenv.Cluster, idx ...int) func(*MonitorConfig) {
	return func(mc *MonitorConfig) {
		for _, i := range idx {
			mc.Ignored = append(mc.Ignored, mustAddr(c.Servers[i].Addr()))
		}
	}
}

// killMasterUnderWriter kills s0 while a writer writes, waits for a new master and for the
// writes to flow again, and checks that no acknowledged write is missing on it.
func killMasterUnderWriter(t *testing.T, c *testenv.Cluster, m *Monitor) *topology.Snapshot {
	t.Helper()
	w := startWriter(t, m, c, 5*time.Millisecond)
	w.waitAcked(t, 50)
	old := c.Master().Addr()
	c.Master().Kill()
	s := waitNewMaster(t, m, old, 20*time.Second)
	w.waitAcked(t, len(w.Acked())+20)
	w.Stop()
	if lost := missing(t, serverByAddr(t, c, masterOf(s)), w.Acked()); len(lost) > 0 {
		t.Fatalf("semi-sync failover in a tree lost %d acknowledged writes: %v", len(lost), lost)
	}
	return s
}

func TestTreeMasterKilledRelayIsPromoted(t *testing.T) {
	// s0 -> s1 -> {s2, s3}: depth 2. The relay is at least as advanced as its replicas
	// and keeps them in place.
	c := testenv.StartCluster(t, 4, testenv.Tree(-1, 0, 1, 1))
	createWriterTable(t, c)
	enableSemiSync(t, c)
	m, events := failoverMonitor(t, c, nil)
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy tree", func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Slave,Slave" })

	s := killMasterUnderWriter(t, c, m)
	if got := masterOf(s); got != c.Servers[1].Addr() {
		t.Fatalf("new master %s, want the relay s1 %s", got, c.Servers[1].Addr())
	}
	assertTree(t, c, 1, map[int]int{2: 1, 3: 1})
	if len(eventsWith(events, "keeps 2 replicas in place")) == 0 {
		t.Errorf("no event explains the election: %+v", events.Recent("", 0))
	}
}

func TestTreeMasterKilledLeafUnderRelaysIsPromoted(t *testing.T) {
	// s0 -> s1 -> s2 -> s3: depth 3. s1 and s2 may not be promoted (db-servers-ignored-hosts):
	// the leaf s3 wins, catches up through both relays (s1 alone acknowledged the writes),
	// and the relays go under it in their order.
	c := testenv.StartCluster(t, 4, testenv.Tree(-1, 0, 1, 2))
	createWriterTable(t, c)
	enableSemiSync(t, c)
	m, _ := failoverMonitor(t, c, ignoring(c, 1, 2))
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy tree", func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Relay,Slave" })

	s := killMasterUnderWriter(t, c, m)
	if got := masterOf(s); got != c.Servers[3].Addr() {
		t.Fatalf("new master %s, want the leaf s3 %s", got, c.Servers[3].Addr())
	}
	assertTree(t, c, 3, map[int]int{1: 3, 2: 1})
}

func TestTreeRelayKilledItsReplicasMoveAndItRejoins(t *testing.T) {
	// s0 -> s1 -> {s2, s3}, s0 -> s4; then s1 killed.
	c := testenv.StartCluster(t, 5, testenv.Tree(-1, 0, 1, 1, 0))
	createWriterTable(t, c)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.AutoRejoin = true })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy tree", func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Slave,Slave,Slave" })

	relay := c.Servers[1]
	relay.Kill()
	c.Master().Exec(t, "INSERT INTO rmp.w VALUES (1, NOW(6))") // written while the relay is dead
	assertTree(t, c, 0, map[int]int{2: 0, 3: 0, 4: 0})
	for _, i := range []int{2, 3} {
		if got := c.Servers[i].QueryString(t, "SELECT MASTER_GTID_WAIT(?, 10)", c.Master().QueryString(t, "SELECT @@gtid_binlog_pos")); got != "0" {
			t.Fatalf("s%d did not receive the write made after the relay died", i)
		}
	}
	if len(eventsWith(events, "dead relay "+relay.Addr())) == 0 {
		t.Errorf("no relay recovery event: %+v", events.Recent("", 0))
	}
	if h := m.History(); h.Count != 0 {
		t.Errorf("a relay recovery counted as a failover: %+v", h)
	}

	relay.Restart()
	assertTree(t, c, 0, map[int]int{1: 0, 2: 0, 3: 0, 4: 0})
	waitFor(t, m, 10*time.Second, "relay back as a replica", func(s *topology.Snapshot) bool {
		return states(s) == "Master,Slave,Slave,Slave,Slave" && len(s.Problems) == 0
	})
}

func TestTreeDepth3RelayKilledReplicasGoToItsSource(t *testing.T) {
	// s0 -> s1 -> s2 -> s3: the relay s2 dies; s3 goes to s2's source, the relay s1.
	c := testenv.StartCluster(t, 4, testenv.Tree(-1, 0, 1, 2))
	createWriterTable(t, c)
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.AutoRejoin = true })
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy tree", func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Relay,Slave" })
	c.Servers[2].Kill()
	assertTree(t, c, 0, map[int]int{1: 0, 3: 1})
}

func TestTreeDryRunAfterMasterDiedBeforeTheManagerStarted(t *testing.T) {
	// The manager starts after the master of s0 -> s1 -> s2 died: it never saw it alive.
	// Every server holds the dead master's transactions; none is errant.
	c := testenv.StartCluster(t, 3, testenv.Tree(-1, 0, 1))
	createWriterTable(t, c)
	c.Master().Kill()
	m, _ := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.Failover.Mode = "manual" })
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		m.Tick(ctx)
	}
	p, _, err := m.Act(ctx, ActionRequest{Kind: PlanFailover, DryRun: true, Origin: "cli"})
	if err != nil || p.Refused != "" {
		t.Fatalf("dry run: %v %s; election %+v", err, p.Refused, p.Election)
	}
	if len(p.Election.Candidates) != 2 {
		t.Fatalf("candidates %+v", p.Election.Candidates)
	}
	for _, cand := range p.Election.Candidates {
		if !cand.Eligible || strings.Contains(strings.Join(cand.Reasons, ";"), "errant") {
			t.Errorf("%s: eligible %v reasons %v", cand.Server, cand.Eligible, cand.Reasons)
		}
	}
	if p.NewMaster.String() != c.Servers[1].Addr() {
		t.Errorf("winner %s, want the relay %s", p.NewMaster, c.Servers[1].Addr())
	}
	for _, pr := range m.Snapshot().Problems {
		if pr.Code == topology.ErrantGTID {
			t.Errorf("errant reported: %+v", pr)
		}
	}
	// The operator runs it: the relay is promoted and the leaf stays under it.
	if _, res, err := m.Act(ctx, ActionRequest{Kind: PlanFailover, Origin: "cli", Wait: time.Second}); err != nil {
		t.Fatalf("failover: %v %+v", err, res)
	}
	assertTree(t, c, 1, map[int]int{2: 1})

}

// Switchover in the tree s0 -> s1 -> {s2, s3} under a writer: to the relay s1 (its
// replicas stay under it, the old master goes under it too), and to the leaf s2 (the old
// master and the relay go under it, s3 stays under the relay). No acknowledged write lost.
func TestTreeSwitchoverToTheRelayAndToALeaf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  int
		parents map[int]int
	}{
		{"relay", 1, map[int]int{0: 1, 2: 1, 3: 1}},
		{"leaf", 2, map[int]int{0: 2, 1: 2, 3: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testenv.StartCluster(t, 4, testenv.Tree(-1, 0, 1, 1))
			createWriterTable(t, c)
			m, _ := failoverMonitor(t, c, nil)
			runMonitor(t, m)
			waitFor(t, m, 5*time.Second, "healthy tree", func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Slave,Slave" })
			w := startWriter(t, m, c, 5*time.Millisecond)
			w.waitAcked(t, 50)
			target := mustAddr(c.Servers[tc.target].Addr())
			if _, res, err := m.Switchover(context.Background(), &target, false); err != nil {
				t.Fatalf("switchover: %v (%+v)", err, res)
			}
			w.waitAcked(t, len(w.Acked())+20)
			w.Stop()
			assertTree(t, c, tc.target, tc.parents)
			if lost := missing(t, c.Servers[tc.target], w.Acked()); len(lost) > 0 {
				t.Fatalf("switchover lost %d acknowledged writes", len(lost))
			}
		})
	}
}
