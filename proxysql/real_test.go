package proxysql_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Tests of the Router on a real ProxySQL 2.7 in front of real MariaDB 10.11 servers. The
// application connects to ProxySQL's clients' port as a user ProxySQL knows only through
// the Router's user sync, over 127.0.0.1 and [::1].

// Writes through ProxySQL over [::1] and 127.0.0.1 (a 10 ms writer each) survive a kill -9
// of the master: the monitor fails over automatically, the executor moves ProxySQL's writer,
// no acknowledged write is lost and every write acknowledged after the move was committed
// by the new master. The old master, restarted, rejoins and the Router makes it a reader.
func TestRealFailoverKill9KeepsWritesOverBothFamilies(t *testing.T) {
	s := startStack(t, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("automatic", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s0 ONLINE", "20 s1 ONLINE", "20 s2 ONLINE")
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)

	old := s.c.Master()
	// Kill a master whose replicas have everything it acknowledged, so that it may rejoin.
	w4.Pause()
	w6.Pause()
	s.c.WaitSync(t)
	old.Kill()
	killed := time.Now()
	w4.Resume()
	w6.Resume()
	waitFor(t, 20*time.Second, "failover", func() bool {
		ms, ok := m.Snapshot().MasterServer()
		return ok && ms.Addr != addrOf(old) && ms.State == topology.StateMaster && len(tr.Calls()) == 1
	})
	if err := tr.Errs()[0]; err != nil {
		t.Fatalf("router failover: %v", err)
	}
	nm := s.server(masterOf(m.Snapshot()))
	t0 := tr.Calls()[0]
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
		a, _ := w.firstAckAfter(killed)
		t.Logf("writer over %s: first write acknowledged %v after kill -9 (%v after the router's failover call); %d errors",
			w.via, a.at.Sub(killed).Round(time.Millisecond), a.at.Sub(t0).Round(time.Millisecond), len(w.Errors()))
	}
	w4.Stop()
	w6.Stop()
	checkAcks(t, nm, t0, w4, w6)
	other := s.c.Servers[1]
	if other == nm {
		other = s.c.Servers[2]
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second,
		"10 "+s.label(nm)+" ONLINE", "20 "+s.label(other)+" ONLINE", "666 s0 OFFLINE_SOFT")

	// The old master comes back, rejoins as a replica: the Router makes it a reader.
	old.Restart()
	waitFor(t, 20*time.Second, "old master rejoined", func() bool { return healthy(m.Snapshot()) })
	s.waitRows("runtime_mysql_servers", 5*time.Second,
		"10 "+s.label(nm)+" ONLINE", "20 "+s.label(other)+" ONLINE", "20 s0 ONLINE")
}

// label is the "sN" name of a server in table dumps.
func (s *stack) label(srv *testenv.Server) string { return "s" + strconv.Itoa(srv.Index()) }

// A switchover under two 10 ms writers (over [::1] and 127.0.0.1) through ProxySQL: no
// acknowledged write is lost, none reaches the demoted master (its own server_id gains no
// GTID after the switch), and the demoted master becomes a reader.
func TestRealSwitchoverUnderWriterLeavesNothingOnDemotedMaster(t *testing.T) {
	s := startStack(t, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)

	old, nm := s.c.Master(), s.c.Servers[2]
	target := addrOf(nm)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, res, err := m.Switchover(ctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	if err := tr.Errs()[0]; err != nil {
		t.Fatalf("router failover: %v", err)
	}
	oldSeq := binlogSeq(t, old, old.ServerID())
	t0 := tr.Calls()[0]
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
		t.Logf("writer over %s: longest gap between two acknowledged writes %v (%d errors)", w.via,
			w.longestGap(start.Add(-50*time.Millisecond), time.Now()).Round(time.Millisecond), len(w.Errors()))
	}
	time.Sleep(300 * time.Millisecond) // more ticks and writes
	w4.Stop()
	w6.Stop()

	pos := nm.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := old.QueryString(t, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); got != "0" {
		t.Fatalf("demoted master did not catch up with %s", pos)
	}
	if seq := binlogSeq(t, old, old.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", old.ServerID(), seq, oldSeq)
	}
	checkAcks(t, nm, t0, w4, w6)
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 ONLINE")
}

// binlogSeq returns the sequence of (domain 0, serverID) in a server's gtid_binlog_state.
func binlogSeq(t testing.TB, srv *testenv.Server, serverID int) uint64 {
	t.Helper()
	for _, p := range strings.Split(srv.QueryString(t, "SELECT @@gtid_binlog_state"), ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		g, err := gtid.ParseGTID(p)
		if err != nil {
			t.Fatal(err)
		}
		if g.Domain == 0 && g.ServerID == uint32(serverID) {
			return g.Seq
		}
	}
	return 0
}

// readsReach opens n new sessions over each family and returns the server_ids that
// answered a plain SELECT (sent to the readers by the readwritesplit query rules).
func (s *stack) readsReach(n int) map[int]int {
	s.t.Helper()
	seen := map[int]int{}
	for i := 0; i < n; i++ {
		for _, v6 := range []bool{false, true} {
			db := s.clientDB(v6)
			id, err := serverIDOf(db, "SELECT @@server_id")
			db.Close()
			if err != nil {
				s.t.Fatalf("read through proxysql at %s: %v", s.p.Addr(v6), err)
			}
			seen[id]++
		}
	}
	return seen
}

// Maintenance through the monitor (SetMaintenance, then its ticks) with two writers
// running: a replica in maintenance drains (OFFLINE_SOFT: no new read reaches it, a tick
// does not undo it, a switchover keeps it drained); the master in maintenance drains its
// writes (the open sessions keep writing, as OFFLINE_SOFT lets them; the cluster refuses a
// switchover of a master in maintenance). Across all of it and a switchover, no
// acknowledged write is lost and none reaches the demoted master.
func TestRealMaintenanceDrainsWithoutLosingWrites(t *testing.T) {
	s := startStack(t, stackConfig{tags: []string{"readwritesplit"}})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)
	ctx := context.Background()
	s0, s1, s2 := s.c.Servers[0], s.c.Servers[1], s.c.Servers[2]

	if err := m.SetMaintenance(ctx, addrOf(s1), true); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	time.Sleep(500 * time.Millisecond) // ticks: the snapshot now carries the flag
	s.waitRows("runtime_mysql_servers", time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	if seen := s.readsReach(10); seen[s1.ServerID()] > 0 || seen[s2.ServerID()] == 0 {
		t.Fatalf("reads by server_id during the maintenance of server %d: %v", s1.ServerID(), seen)
	}

	if err := m.SetMaintenance(ctx, addrOf(s0), true); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", time.Second, "10 s0 OFFLINE_SOFT", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+20, 5*time.Second) // open sessions drain: they keep writing
	}
	if err := m.SetMaintenance(ctx, addrOf(s0), false); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", time.Second, "10 s0 ONLINE", "20 s1 OFFLINE_SOFT", "20 s2 ONLINE")

	target := addrOf(s2)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, res, err := m.Switchover(sctx, &target, false); err != nil {
		t.Fatalf("switchover: %v (%+v)", err, res)
	}
	t0 := tr.Calls()[0]
	oldSeq := binlogSeq(t, s0, s0.ServerID())
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+30, 10*time.Second)
	}
	w4.Stop()
	w6.Stop()
	checkAcks(t, s2, t0, w4, w6)
	if seq := binlogSeq(t, s0, s0.ServerID()); seq != oldSeq {
		t.Fatalf("demoted master wrote GTID 0-%d-%d after the switch (was %d)", s0.ServerID(), seq, oldSeq)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 OFFLINE_SOFT")
	if err := m.SetMaintenance(ctx, addrOf(s1), false); err != nil {
		t.Fatal(err)
	}
	s.waitRows("runtime_mysql_servers", 5*time.Second, "10 s2 ONLINE", "20 s0 ONLINE", "20 s1 ONLINE")
	if seen := s.readsReach(10); seen[s2.ServerID()] > 0 || seen[s0.ServerID()] == 0 || seen[s1.ServerID()] == 0 {
		t.Fatalf("reads by server_id after the maintenance: %v", seen)
	}
}
