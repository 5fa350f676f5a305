package haproxy

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// BenchmarkPromotionToFirstWrite measures, on real MariaDB behind Debian's haproxy, the time
// from the promotion (the executor calls the router's Failover right after its promote step)
// to the first write a client acknowledged through HAProxy's write port. The client writes
// in a loop (one connection, reconnecting on error, a pause of 200 µs between attempts).
// Ten promotions per iteration: switchovers back and forth on a 2-node cluster, and
// failovers after kill -9 of the master (the old master restarted and rejoined between runs).
//
//	go test ./haproxy -run '^$' -bench PromotionToFirstWrite -benchtime 1x
func BenchmarkPromotionToFirstWrite(b *testing.B) {
	testenv.RequireHAProxy(b)
	b.Run("switchover", func(b *testing.B) { benchPromotion(b, false) })
	b.Run("failover", func(b *testing.B) { benchPromotion(b, true) })
}

func benchPromotion(b *testing.B, kill bool) {
	c := testenv.StartCluster(b, 2)
	prepare(b, c)
	set := settingsFor(b, c)
	probe := newMonitor(b, c, "manual")
	snap := tickUntil(b, probe, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave" })
	probe.Close()
	_, r := startHAProxy(b, set, snap)
	tr := &timedRouter{Router: r}
	mode := "manual"
	if kill {
		mode = "automatic"
	}
	m := newMonitor(b, c, mode, tr)
	if kill {
		runMonitor(b, m)
	}
	w := startHWriter(b, fmt.Sprintf("127.0.0.1:%d", set.WritePort), "ipv4", 0, 200*time.Microsecond)
	w.waitAcks(b, 20, 10*time.Second)

	const runs = 10
	var samples []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for run := 0; run < runs; run++ {
			calls := len(tr.Calls())
			var master *testenv.Server
			for _, s := range c.Servers {
				if s.Addr() == masterOf(m.Tick(context.Background())) {
					master = s
				}
			}
			if master == nil {
				b.Fatalf("no master: %s", states(m.Snapshot()))
			}
			if kill {
				// Kill -9 a master whose replica has everything: an asynchronous
				// replica missing the last writes would keep the old master out
				// (FormerMasterDiverged) and end the series.
				w.Pause()
				pos := master.QueryString(b, "SELECT @@gtid_binlog_pos")
				for _, s := range c.Servers {
					if s != master && s.QueryString(b, "SELECT MASTER_GTID_WAIT(?, 10)", pos) != "0" {
						b.Fatalf("replica %s did not reach %s", s.Addr(), pos)
					}
				}
				master.Kill()
				w.Resume()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				p, res, err := m.Switchover(ctx, nil, false)
				cancel()
				if err != nil {
					b.Fatalf("switchover %d: %v (%+v); excluded: %s", run, err, res, p.Election.Excluded())
				}
			}
			waitFor(b, 20*time.Second, "promotion", func() bool { return len(tr.Calls()) > calls })
			t0 := tr.Calls()[calls]
			var first ack
			waitFor(b, 10*time.Second, "first write after the promotion", func() bool {
				a, ok := w.firstAckAfter(t0)
				first = a
				return ok
			})
			samples = append(samples, first.at.Sub(t0))
			if kill {
				b.StopTimer()
				master.Restart()
				waitFor(b, 20*time.Second, "old master rejoined", func() bool { return replicating(m.Snapshot()) })
				b.StartTimer()
			} else {
				tickUntil(b, m, 10*time.Second, "healthy after switchover", replicating)
			}
		}
	}
	b.StopTimer()
	w.Stop()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	q := func(p float64) time.Duration { return samples[int(p*float64(len(samples)-1))] }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(q(0.5)), "p50-ms")
	b.ReportMetric(ms(q(0.9)), "p90-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("promotion to first write over %d runs: p50 %v p90 %v max %v", len(samples), q(0.5), q(0.9), samples[len(samples)-1])
}

// replicating reports a master and replicas whose both threads run (a replica's IO thread
// may show "Preparing" for a moment after CHANGE MASTER while its state is already Slave).
func replicating(s *topology.Snapshot) bool {
	if s == nil || s.Master < 0 {
		return false
	}
	for i, srv := range s.Servers {
		if i == s.Master {
			if srv.State != topology.StateMaster {
				return false
			}
			continue
		}
		r, ok := srv.PrimaryReplication()
		if srv.State != topology.StateSlave || !ok || !r.Healthy() {
			return false
		}
	}
	return true
}
