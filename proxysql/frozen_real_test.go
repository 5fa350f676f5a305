package proxysql_test

import (
	"testing"
	"time"

	"replication-manager-pro/topology"
)

// A master frozen (SIGSTOP) under two writers going through ProxySQL (127.0.0.1 and [::1]),
// with semi-sync: the failover moves the writes to the new master; once the old master
// resumes, no write sent through ProxySQL after the failover reaches it, no acknowledged
// write is lost, and the old master is read-only and out of the writer hostgroup.
func TestRealFrozenMasterThroughProxySQL(t *testing.T) {
	s := startStack(t, stackConfig{})
	old := s.c.Master()
	old.Exec(t, "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC")
	old.Exec(t, "SET GLOBAL rpl_semi_sync_master_timeout = 60000")
	old.Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	for _, r := range s.c.Replicas() {
		r.Exec(t, "SET GLOBAL rpl_semi_sync_slave_enabled = ON")
		r.Exec(t, "STOP SLAVE IO_THREAD")
		r.Exec(t, "START SLAVE IO_THREAD")
	}
	tr := &timedRouter{Router: s.r}
	m := s.monitor("automatic", tr)
	tickUntil(t, m, 10*time.Second, "healthy", healthy)
	run(t, m)
	w4 := s.startWriter(false, 0, 10*time.Millisecond)
	w6 := s.startWriter(true, 1e9, 10*time.Millisecond)
	w4.waitAcks(t, 20, 10*time.Second)
	w6.waitAcks(t, 20, 10*time.Second)

	old.Stop() // SIGSTOP: connections stay open, nothing answers
	t.Cleanup(old.Cont)
	waitFor(t, 30*time.Second, "failover", func() bool {
		ms, ok := m.Snapshot().MasterServer()
		return ok && ms.Addr != addrOf(old) && ms.State == topology.StateMaster && len(tr.Calls()) == 1
	})
	t0 := tr.Calls()[0]
	nm := s.server(masterOf(m.Snapshot()))
	for _, w := range []*writer{w4, w6} {
		w.waitAcks(t, len(w.Acks())+20, 15*time.Second)
	}
	old.Cont()
	time.Sleep(3 * time.Second) // the old master runs what it had, the manager fences it
	w4.Stop()
	w6.Stop()

	checkAcks(t, nm, t0, w4, w6)
	for _, w := range []*writer{w4, w6} {
		first, ok := w.firstAckAfter(t0)
		if !ok {
			t.Fatalf("writer over %s: nothing acknowledged after the failover", w.via)
		}
		// Ids are sent in order: those from the first one acknowledged after the failover on
		// were all sent after it.
		var n string
		n = old.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE via = ? AND id >= ?", w.via, first.id)
		if n != "0" {
			t.Errorf("writer over %s: %s writes sent through ProxySQL after the failover reached the old master", w.via, n)
		}
	}
	if ro := old.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Errorf("resumed old master read_only = %s", ro)
	}
	for _, row := range s.rows("runtime_mysql_servers") {
		if row == "10 s0 ONLINE" {
			t.Errorf("the old master is in the writer hostgroup: %v", s.rows("runtime_mysql_servers"))
		}
	}

}
