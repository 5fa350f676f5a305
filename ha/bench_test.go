package ha

import (
	"sort"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// BenchmarkLeaderKilled: two managers share a cluster on a real 3-member etcd (lease TTL
// 2 s); the leader dies without a word (kill -9: no hand-over, no revoke). It measures from
// the death to the standby leading (standby-leading-p50/max-ms), 10 times. The floor is the
// lease: the others cannot know before it expires. Figures in docs/benchmarks.md.
func BenchmarkLeaderKilled(b *testing.B) {
	e := testenv.StartEtcd(b, 3)
	var took []time.Duration
	for run := 0; run < 10; run++ {
		x := startB(b, e, "x")
		y := startB(b, e, "y")
		cs := []*Coordinator{x, y}
		cl := "bench" + string(rune('a'+run))
		for _, c := range cs {
			c.Lead(cl, nil)
		}
		deadline := time.Now().Add(10 * time.Second)
		var leader, standby *Coordinator
		for leader == nil {
			for i, c := range cs {
				if c.Lead(cl, nil).Leading() {
					leader, standby = c, cs[1-i]
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("no leader")
			}
			time.Sleep(5 * time.Millisecond)
		}
		leader.crash()
		t0 := time.Now()
		for !standby.Lead(cl, nil).Leading() {
			if time.Since(t0) > 15*time.Second {
				b.Fatal("standby never led")
			}
			time.Sleep(2 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		standby.Close()
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[(len(took)-1)/2])/1e6, "standby-leading-p50-ms")
	b.ReportMetric(float64(took[len(took)-1])/1e6, "standby-leading-max-ms")
	b.Logf("kill -9 of the leader to the standby leading (TTL 2 s): %v", took)
}

func startB(b *testing.B, e *testenv.Etcd, name string) *Coordinator {
	b.Helper()
	c, err := startCoordinator(e, name)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
