package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	stdlog "log"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Benchmarks of a master that is frozen (SIGSTOP) or cut off (its network namespace's link
// down), not killed, on MariaDB's default replication timing (slave_net_timeout 60 s, no
// heartbeat set): the monitor of BenchmarkFailover (0.2 s ticker, ping counter 3, heartbeat
// check) with force-slave-heartbeat's derived period (0.2 s) and silence (0.6 s). Figures
// in docs/benchmarks.md, next to the kill -9 ones.

// benchFault runs 10 faults, each on a fresh 3-node cluster made by start, while an
// application writer commits every 5 ms, and reports from the fault to the first commit a
// replica accepts once promoted (writable-p50/max-ms: a prober inserts on the replicas
// every 2 ms; the writer itself would first wait out its 500 ms timeout on the frozen
// master) and to the remaining replica replicating from the new master
// (repointed-p50/max-ms).
func benchFault(b *testing.B, start func(run int) *testenv.Cluster, fault func(c *testenv.Cluster) (undo func())) {
	const runs = 10
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	var writable, repointed []time.Duration
	for run := 0; run < runs; run++ {
		c := start(run)
		benchWriterTable(b, c)
		m, events := benchFailoverMonitor(b, c, "automatic")
		m.cfg.HeartbeatPeriod, m.cfg.HeartbeatTimeout = 200*time.Millisecond, 600*time.Millisecond
		m.cfg.Failover.Exec.HeartbeatPeriod = 200 * time.Millisecond
		stop := startBenchMonitor(m)
		benchWaitHealthy(b, m, run, 20*time.Second, func(s *topology.Snapshot) bool {
			return states(s) == "Master,Slave,Slave" && !hasProblem(s, topology.SlowHeartbeat) && heartbeatsAt(s, 0.2)
		})
		w := startAppWriter(b, c, 5*time.Millisecond)
		w.mark(time.Now())
		w.waitCommits(b, 50, 10*time.Second)
		watch := newReplWatch(b, c.Replicas())
		time.Sleep(time.Duration(rand.Int64N(int64(200 * time.Millisecond)))) // anywhere within a tick

		probed := make(chan time.Time, 1)
		pctx, pcancel := context.WithCancel(context.Background())
		go probeWritable(pctx, b, c.Replicas(), probed)
		t0 := time.Now()
		w.mark(t0)
		undo := fault(c)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		doneAt, newAddr, err := watch.until(ctx, func(string) bool { return true })
		cancel()
		if err != nil {
			trace(b, events, t0, "failed run")
			undo()
			b.Fatalf("run %d: %v", run, err)
		}
		nm := -1
		for i, s := range c.Servers {
			if s.Addr() == newAddr {
				nm = i
			}
		}
		st := w.waitCommits(b, 20, 10*time.Second)
		if st.server != nm {
			undo()
			b.Fatalf("run %d: writer on %s, want the new master %s", run, w.addrs[st.server], newAddr)
		}
		var first time.Time
		select {
		case first = <-probed:
		case <-time.After(10 * time.Second):
			b.Fatalf("run %d: no replica accepted a write", run)
		}
		pcancel()
		w.Stop()
		stop()
		undo()
		writable = append(writable, first.Sub(t0))
		repointed = append(repointed, doneAt.Sub(t0))
		trace(b, events, t0, fmt.Sprintf("run %d: writable %.0f ms, repointed %.0f ms", run, msOf(first.Sub(t0)), msOf(doneAt.Sub(t0))))
		c.Close()
	}
	reportP50Max(b, writable, "writable")
	reportP50Max(b, repointed, "repointed")
	b.Logf("writable ms: %s; repointed ms: %s", fmtMs(writable), fmtMs(repointed))
}

// heartbeatsAt reports every replica channel expecting a heartbeat every period seconds.
func heartbeatsAt(s *topology.Snapshot, period float64) bool {
	for _, srv := range s.Servers {
		for _, r := range srv.Replications {
			if r.HeartbeatPeriod < period-0.001 || r.HeartbeatPeriod > period+0.001 {
				return false
			}
		}
	}
	return true
}

func BenchmarkFailoverFrozenMaster(b *testing.B) {
	benchFault(b, func(int) *testenv.Cluster {
		return testenv.StartCluster(b, 3, testenv.ReplicationDefaults())
	}, func(c *testenv.Cluster) func() {
		c.Master().Stop()
		return c.Master().Cont
	})
}

func BenchmarkFailoverCutOffMaster(b *testing.B) {
	testenv.RequireRoot(b, "network namespaces cut the master off")
	n := testenv.NewNetwork(b, 3)
	benchFault(b, func(int) *testenv.Cluster {
		return testenv.StartCluster(b, 3, testenv.OnHosts(n.Hosts...), testenv.ReplicationDefaults())
	}, func(*testenv.Cluster) func() {
		n.Hosts[0].LinkDown()
		return n.Hosts[0].LinkUp
	})
}

// BenchmarkFailoverFrozenMasterSemiSync is BenchmarkFailoverFrozenMaster with semi-sync on
// (AFTER_SYNC): stopping a semi-sync replica's IO thread makes MariaDB log in to the source
// to kill its dump thread, which a frozen source never answers.
func BenchmarkFailoverFrozenMasterSemiSync(b *testing.B) {
	benchFault(b, func(int) *testenv.Cluster {
		c := testenv.StartCluster(b, 3, testenv.ReplicationDefaults())
		enableSemiSync(b, c)
		return c
	}, func(c *testenv.Cluster) func() {
		c.Master().Stop()
		return c.Master().Cont
	})
}

// BenchmarkFailoverCutOffMasterSemiSync is BenchmarkFailoverCutOffMaster with semi-sync on.
func BenchmarkFailoverCutOffMasterSemiSync(b *testing.B) {
	testenv.RequireRoot(b, "network namespaces cut the master off")
	n := testenv.NewNetwork(b, 3)
	benchFault(b, func(int) *testenv.Cluster {
		c := testenv.StartCluster(b, 3, testenv.OnHosts(n.Hosts...), testenv.ReplicationDefaults())
		enableSemiSync(b, c)
		return c
	}, func(*testenv.Cluster) func() {
		n.Hosts[0].LinkDown()
		return n.Hosts[0].LinkUp
	})
}

// probeWritable inserts as the application on every server every 2 ms (300 ms timeouts)
// and sends the time of the first acknowledged insert.
func probeWritable(ctx context.Context, tb testing.TB, servers []*testenv.Server, first chan<- time.Time) {
	var dbs []*sql.DB
	for _, s := range servers {
		dbs = append(dbs, s.DB(tb, testenv.WithUser("app", "app-pw"), testenv.WithTimeouts(300*time.Millisecond, 300*time.Millisecond)))
	}
	id := int64(9_000_000)
	for ctx.Err() == nil {
		for _, db := range dbs {
			id++
			ictx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err := db.ExecContext(ictx, "INSERT INTO rmp.w VALUES (?, NOW(6))", id)
			cancel()
			if err == nil {
				first <- time.Now()
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
}
