package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Network faults in network namespaces (root only): a master whose link goes down fails
// over fast and is fenced when it comes back; a replica cut off, the manager cut off from
// the master alone, or the manager's own network flapping never cause a failover.

// dropManager makes a host drop every packet from or to the manager (the root namespace's
// bridge addresses); the returned function lifts it.
func dropManager(t *testing.T, h *testenv.Host) func() {
	t.Helper()
	rules := fmt.Sprintf(`table inet rmpmgr {
	chain in { type filter hook input priority -300; policy accept; ip saddr %s drop; ip6 saddr %s drop; }
	chain out { type filter hook output priority -300; policy accept; ip daddr %s drop; ip6 daddr %s drop; }
}
`, testenv.BridgeIPv4, testenv.BridgeIPv6, testenv.BridgeIPv4, testenv.BridgeIPv6)
	f := filepath.Join(t.TempDir(), "mgr.nft")
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Exec("nft", "-f", f); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	lifted := false
	lift := func() {
		if !lifted {
			lifted = true
			h.Exec("nft", "delete", "table", "inet", "rmpmgr")
		}
	}
	t.Cleanup(lift)
	return lift
}

func netCluster(t *testing.T) (*testenv.Network, *testenv.Cluster) {
	t.Helper()
	testenv.RequireRoot(t, "network namespaces cut servers and the manager apart")
	n := testenv.NewNetwork(t, 3)
	c := testenv.StartCluster(t, 3, testenv.OnHosts(n.Hosts...), testenv.ReplicationDefaults())
	return n, c
}

func TestCutOffMasterFailsOverAndIsFencedWhenItReturns(t *testing.T) {
	n, c := netCluster(t)
	createWriterTable(t, c)
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	old := c.Master()
	n.Hosts[0].LinkDown() // a pulled cable: no reset, connections just go silent
	t.Cleanup(n.Hosts[0].LinkUp)
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	assertRepointed(t, c, masterOf(s), old.Addr())
	n.Hosts[0].LinkUp()
	// Back on the network: the read_only queued by the failover, then the monitor's
	// isolation, keep it out.
	deadline := time.Now().Add(15 * time.Second)
	for len(eventsWith(events, "fence: ")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("old master not fenced after its link came back: %s", codes(m.Snapshot().Problems))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ro := old.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("returned old master read_only = %s", ro)
	}
}

func TestNoFailoverWhenOnlyTheManagerLosesTheMaster(t *testing.T) {
	n, c := netCluster(t)
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	// Only the manager's traffic is dropped in the master's namespace: the replicas on the
	// other hosts keep replicating, for 30 s.
	lift := dropManager(t, n.Hosts[0])
	last := noFailoverFor(t, m, c.Master().Addr(), 30*time.Second)
	if !hasProblem(last, topology.UnreachableMasterWithHealthyReplicas) {
		t.Fatalf("problems %s, want UnreachableMasterWithHealthyReplicas", codes(last.Problems))
	}
	if got := eventsWith(events, "replicas still replicate from it"); len(got) == 0 {
		t.Fatalf("no event says why there was no failover: %+v", events.Recent("", 0))
	}
	lift()
	waitFor(t, m, 10*time.Second, "master back", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
}

func TestNoFailoverWhenAReplicaIsCutOff(t *testing.T) {
	n, c := netCluster(t)
	m, _ := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	n.Hosts[1].Cut()
	t.Cleanup(n.Hosts[1].Restore)
	waitFor(t, m, 10*time.Second, "replica failed", func(s *topology.Snapshot) bool { return states(s) == "Master,Failed,Slave" })
	noFailoverFor(t, m, c.Master().Addr(), 5*time.Second)
	n.Hosts[1].Restore()
	waitFor(t, m, 30*time.Second, "replica back", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
}

func TestNoFailoverWhileTheManagersNetworkFlaps(t *testing.T) {
	n, c := netCluster(t)
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	// The manager loses every server at once, for a second at a time, while the servers
	// keep replicating among themselves.
	for i := 0; i < 5; i++ {
		var lifts []func()
		for _, h := range n.Hosts {
			lifts = append(lifts, dropManager(t, h))
		}
		noFailoverFor(t, m, c.Master().Addr(), time.Second)
		for _, l := range lifts {
			l()
		}
		noFailoverFor(t, m, c.Master().Addr(), time.Second)
	}
	noFailoverFor(t, m, c.Master().Addr(), 3*time.Second)
	if got := eventsWith(events, "starting failover"); len(got) > 0 {
		t.Fatalf("a failover started: %+v", got)
	}
	waitFor(t, m, 10*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
}

// A master that dies (its connections reset) on a host that then vanishes for new
// connections (SYN dropped): the replicas' IO threads reconnect into the void, and stopping
// them must not wait out a connect timeout. With semi-sync and a writer running: the
// failover ends with no failed step, no acknowledged write lost, everyone repointed.
func TestKilledMasterOnAVanishingHostFailsOver(t *testing.T) {
	n, c := netCluster(t)
	createWriterTable(t, c)
	enableSemiSync(t, c)
	m, events := cutoffMonitor(t, c, nil)
	runMonitor(t, m)
	waitHeartbeats(t, m, c, "Master,Slave,Slave")
	w := startWriter(t, m, c, 5*time.Millisecond)
	w.waitAcked(t, 50)
	old := c.Master()
	rules := fmt.Sprintf("table inet rmpsyn {\n\tchain in { type filter hook input priority -300; policy accept; tcp dport %d tcp flags & (syn|ack) == syn drop; }\n}\n", old.Port())
	f := filepath.Join(t.TempDir(), "syn.nft")
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Hosts[0].Exec("nft", "-f", f); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	t.Cleanup(func() { n.Hosts[0].Exec("nft", "delete", "table", "inet", "rmpsyn") })
	old.Kill()
	s := waitNewMaster(t, m, old.Addr(), 30*time.Second)
	newMaster := serverByAddr(t, c, masterOf(s))
	assertRepointed(t, c, newMaster.Addr(), old.Addr())
	w.waitAcked(t, len(w.Acked())+20)
	w.Stop()
	steps := 0
	for _, e := range events.Recent("", 0) {
		if e.Kind == "failover-step" {
			steps++
			if e.Error != "" {
				t.Errorf("failover step failed: %s %s: %s", e.Server, e.Message, e.Error)
			}
		}
	}
	if steps == 0 {
		t.Error("no failover step recorded")
	}
	if lost := missing(t, newMaster, w.Acked()); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost: %v", len(lost), lost)
	}
}
