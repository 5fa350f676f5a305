package proxysql_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"replication-manager-pro/topology"
)

// BenchmarkProxySQLKillToFirstWrite measures, on a real ProxySQL in front of a 3-node
// MariaDB cluster, the time from kill -9 of the master to the first write acknowledged
// through ProxySQL over IPv6 ([::1]); the monitor (200 ms ticker, 3 missed probes) fails
// over automatically and the executor moves ProxySQL's writer. The client writes in a loop
// (one connection, 1 ms between attempts). Ten kills; the old master is restarted and
// rejoins between them (its replicas caught up before the kill, so that it may).
//
//	go test ./proxysql -run '^$' -bench ProxySQLKillToFirstWrite -benchtime 1x
func BenchmarkProxySQLKillToFirstWrite(b *testing.B) {
	s := startStack(b, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("automatic", tr)
	tickUntil(b, m, 10*time.Second, "healthy", healthy)
	run(b, m)
	w := s.startWriter(true, 0, time.Millisecond)
	w.waitAcks(b, 20, 10*time.Second)

	const runs = 10
	var kill, fromCall []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for run := 0; run < runs; run++ {
			waitFor(b, 20*time.Second, "healthy", func() bool { return healthy(m.Snapshot()) })
			calls := len(tr.Calls())
			master := s.server(masterOf(m.Snapshot()))
			w.Pause()
			s.waitSync(master)
			master.Kill()
			killed := time.Now()
			w.Resume()
			waitFor(b, 20*time.Second, "failover", func() bool { return len(tr.Calls()) > calls })
			var first ack
			waitFor(b, 10*time.Second, "first write after the kill", func() bool {
				a, ok := w.firstAckAfter(killed)
				first = a
				return ok
			})
			kill = append(kill, first.at.Sub(killed))
			fromCall = append(fromCall, first.at.Sub(tr.Calls()[calls]))
			b.StopTimer()
			if err := tr.Errs()[calls]; err != nil {
				b.Fatalf("router failover: %v", err)
			}
			master.Restart()
			b.StartTimer()
		}
	}
	b.StopTimer()
	w.Stop()
	report(b, "kill", kill)
	report(b, "call", fromCall)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkProxySQLSwitchoverWriteGap measures, through a real ProxySQL, the longest gap
// between two writes acknowledged by a client writing every 10 ms over IPv6 during a
// switchover (from just before the call to 30 writes after it). Ten switchovers on a
// 3-node cluster, each to the next server.
//
//	go test ./proxysql -run '^$' -bench ProxySQLSwitchoverWriteGap -benchtime 1x
func BenchmarkProxySQLSwitchoverWriteGap(b *testing.B) {
	s := startStack(b, stackConfig{})
	tr := &timedRouter{Router: s.r}
	m := s.monitor("manual", tr)
	tickUntil(b, m, 10*time.Second, "healthy", healthy)
	run(b, m)
	w := s.startWriter(true, 0, 10*time.Millisecond)
	w.waitAcks(b, 20, 10*time.Second)

	const runs = 10
	var gaps []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for run := 0; run < runs; run++ {
			waitFor(b, 20*time.Second, "healthy", func() bool { return healthy(m.Snapshot()) })
			cur := s.server(masterOf(m.Snapshot()))
			next := s.c.Servers[(cur.Index()+1)%len(s.c.Servers)]
			target := addrOf(next)
			n := len(w.Acks())
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, res, err := m.Switchover(ctx, &target, false)
			cancel()
			if err != nil {
				b.Fatalf("switchover %d: %v (%+v)", run, err, res)
			}
			w.waitAcks(b, n+30, 10*time.Second)
			gaps = append(gaps, w.longestGap(start.Add(-20*time.Millisecond), time.Now()))
			b.StopTimer()
			checkAcks(b, next, tr.Calls()[len(tr.Calls())-1], w)
			waitFor(b, 10*time.Second, "replicating", func() bool {
				snap := m.Snapshot()
				return healthy(snap) && snap.Servers[next.Index()].State == topology.StateMaster
			})
			b.StartTimer()
		}
	}
	b.StopTimer()
	w.Stop()
	report(b, "gap", gaps)
	b.ReportMetric(0, "ns/op")
}

// report logs and reports the p50 and max of samples, in ms, as <name>-p50-ms and
// <name>-max-ms.
func report(b *testing.B, name string, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p50 := samples[(len(samples)-1)/2]
	b.ReportMetric(ms(p50), name+"-p50-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), name+"-max-ms")
	b.Logf("%s over %d runs: p50 %v, max %v, all %v", name, len(samples), p50, samples[len(samples)-1], samples)
}
