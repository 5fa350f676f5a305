package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	stdlog "log"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Benchmarks of replication trees on real MariaDB servers, 10 runs each on a fresh tree,
// with the monitor of BenchmarkFailover (automatic, 0.2 s ticker, ping counter 3,
// heartbeat check). Figures in docs/benchmarks.md.

// replRow is one server's default channel: its source and whether both threads run;
// present is false when the server has no replication at all (a master).
type replRow struct {
	source  string
	running bool
	present bool
}

func replRowOf(ctx context.Context, db *sql.DB) (replRow, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return replRow{}, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return replRow{}, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return replRow{}, err
	}
	st := map[string]string{}
	for i, c := range cols {
		st[c] = vals[i].String
	}
	return replRow{source: net.JoinHostPort(st["Master_Host"], st["Master_Port"]), running: st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes", present: true}, nil
}

// treeWhole polls the live servers every 2 ms until one of them (the root) has no
// replication and every other replicates, both threads running, from a live server whose
// sources lead up to the root. It returns when that was first seen and the root.
func treeWhole(ctx context.Context, rw *replWatch) (time.Time, string, error) {
	for {
		rows := map[string]replRow{}
		ok := true
		for i, db := range rw.dbs {
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			r, err := replRowOf(qctx, db)
			cancel()
			ok = ok && err == nil
			rows[rw.addrs[i]] = r
		}
		now := time.Now()
		root := ""
		for a, r := range rows {
			if !r.present {
				if root != "" {
					ok = false // two servers without a source
				}
				root = a
			}
		}
		for a := range rows {
			if !ok || root == "" {
				break
			}
			seen := map[string]bool{}
			for cur := a; cur != root; {
				r, live := rows[cur]
				if !live || !r.present || !r.running || seen[cur] {
					ok = false
					break
				}
				seen[cur] = true
				cur = r.source
			}
		}
		if ok && root != "" {
			return now, root, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, "", fmt.Errorf("tree not whole: %v", rows)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// BenchmarkTreeRelayKill kills -9 the relay of s0 -> s1 -> {s2, s3}, s0 -> s4, and measures
// from the kill until both of its replicas replicate from the master with both threads
// running (repointed-p50/max-ms). Target: p50 <= 500 ms.
func BenchmarkTreeRelayKill(b *testing.B) {
	const runs = 10
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	var repointed []time.Duration
	for run := 0; run < runs; run++ {
		c := testenv.StartCluster(b, 5, testenv.Tree(-1, 0, 1, 1, 0))
		m, events := benchFailoverMonitor(b, c, "automatic")
		m.cfg.AutoRejoin = true
		stop := startBenchMonitor(m)
		benchWaitHealthy(b, m, run, 10*time.Second, func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Slave,Slave,Slave" })
		watch := newReplWatch(b, []*testenv.Server{c.Servers[2], c.Servers[3]})
		time.Sleep(time.Duration(rand.Int64N(int64(200 * time.Millisecond)))) // anywhere within a tick
		t0 := time.Now()
		c.Servers[1].Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		at, err := func() (time.Time, error) {
			for {
				all := true
				for _, db := range watch.dbs {
					qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
					r, _ := replRowOf(qctx, db)
					qcancel()
					all = all && r.running && r.source == c.Master().Addr()
				}
				if all {
					return time.Now(), nil
				}
				select {
				case <-ctx.Done():
					return time.Time{}, ctx.Err()
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		cancel()
		if err != nil {
			trace(b, events, t0, "failed run")
			b.Fatalf("run %d: the relay's replicas were not repointed: %v", run, err)
		}
		repointed = append(repointed, at.Sub(t0))
		trace(b, events, t0, fmt.Sprintf("run %d: repointed %.0f ms", run, msOf(at.Sub(t0))))
		stop()
		c.Close()
	}
	reportP50Max(b, repointed, "repointed")
	b.Logf("relay kill -9 -> its replicas repointed, ms: %s", fmtMs(repointed))
}

// BenchmarkTreeFailover kills -9 the master of the depth-2 tree s0 -> s1 -> {s2, s3},
// s0 -> s4, with semi-sync and an application writer committing every 5 ms, and measures
// from the kill (a) the first commit the new master accepts (writable-p50/max-ms) and (b)
// the moment the tree is whole again: every live server replicating, both threads running,
// through live servers up to the new master (tree-whole-p50/max-ms). It checks that no
// acknowledged write is lost. Target: p50 <= 500 ms each.
func BenchmarkTreeFailover(b *testing.B) {
	const runs = 10
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	var writable, whole []time.Duration
	for run := 0; run < runs; run++ {
		c := testenv.StartCluster(b, 5, testenv.Tree(-1, 0, 1, 1, 0))
		benchWriterTable(b, c)
		enableSemiSync(b, c)
		m, events := benchFailoverMonitor(b, c, "automatic")
		stop := startBenchMonitor(m)
		benchWaitHealthy(b, m, run, 10*time.Second, func(s *topology.Snapshot) bool { return states(s) == "Master,Relay,Slave,Slave,Slave" })
		w := startAppWriter(b, c, 5*time.Millisecond)
		w.mark(time.Now())
		w.waitCommits(b, 50, 10*time.Second)
		watch := newReplWatch(b, c.Replicas())
		time.Sleep(time.Duration(rand.Int64N(int64(200 * time.Millisecond))))

		t0 := time.Now()
		w.mark(t0)
		c.Master().Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		doneAt, root, err := treeWhole(ctx, watch)
		cancel()
		if err != nil {
			trace(b, events, t0, "failed run")
			b.Fatalf("run %d: %v", run, err)
		}
		nm := -1
		for i, s := range c.Servers {
			if s.Addr() == root {
				nm = i
			}
		}
		st := w.waitCommits(b, 20, 10*time.Second)
		first, ok := st.firstOK[nm]
		if !ok || st.server != nm {
			b.Fatalf("run %d: writer on %s, want the new master %s", run, w.addrs[st.server], root)
		}
		w.Stop()
		stop()
		var others []*testenv.Server
		for i, s := range c.Servers[1:] {
			if i+1 != nm {
				others = append(others, s)
			}
		}
		checkRun(b, c.Servers[nm], others, w.stats().acked, false)
		writable = append(writable, first.Sub(t0))
		whole = append(whole, doneAt.Sub(t0))
		trace(b, events, t0, fmt.Sprintf("run %d: new master s%d, writable %.0f ms, tree whole %.0f ms", run, nm, msOf(first.Sub(t0)), msOf(doneAt.Sub(t0))))
		c.Close()
	}
	reportP50Max(b, writable, "writable")
	reportP50Max(b, whole, "tree-whole")
	b.Logf("writable ms: %s; tree whole ms: %s; no acknowledged write lost (semi-sync)", fmtMs(writable), fmtMs(whole))
}
