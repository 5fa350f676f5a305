package cluster

import (
	"context"
	"io"
	stdlog "log"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// BenchmarkDetectKilledMaster measures how long the monitor takes to notice a master killed
// with kill -9: a 3-node cluster on real mariadbd, a Monitor running at a 0.2 s ticker
// (monitoring-ticker 0.2), and the time from the kill to the first published snapshot in
// which the master is Suspect or Failed (m.Snapshot() polled every 2 ms). The master is then
// restarted and the monitor waits for Master,Slave,Slave before the next of 20 kills, each
// after a random delay so that kills fall anywhere within a tick. The run time is fixed
// (about 20 s) whatever b.N. Metrics: detect-p50-ms, detect-max-ms (target: under 300).
func BenchmarkDetectKilledMaster(b *testing.B) {
	const (
		kills  = 20
		ticker = 200 * time.Millisecond
		poll   = 2 * time.Millisecond
	)
	// The driver logs "closing bad idle connection" after each kill, in the middle of the
	// benchmark's result line; its logger is global and has no getter to restore it.
	mysql.SetLogger(stdlog.New(io.Discard, "", 0))
	c := testenv.StartCluster(b, 3)
	var hosts []ipv6.HostPort
	for _, s := range c.Servers {
		hp, err := ipv6.ParseHostPort(s.Addr(), 3306)
		if err != nil {
			b.Fatal(err)
		}
		hosts = append(hosts, hp)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := NewMonitor(MonitorConfig{
		Cluster: "detect", Hosts: hosts, Ticker: ticker, ProbeTimeout: time.Second,
		MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
	}, MariaDBDialer(testenv.RootUser, testenv.RootPassword, mariadb.Options{ConnectTimeout: time.Second}), nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	masterState := func() (topology.State, uint64) {
		s := m.Snapshot()
		if s == nil || len(s.Servers) == 0 {
			return topology.StateUnknown, 0
		}
		return s.Servers[0].State, s.Tick
	}
	healthy := func() bool {
		s := m.Snapshot()
		if s == nil {
			return false
		}
		for i, srv := range s.Servers {
			want := topology.StateSlave
			if i == 0 {
				want = topology.StateMaster
			}
			if srv.State != want {
				return false
			}
		}
		return true
	}
	waitHealthy := func(within time.Duration) {
		deadline := time.Now().Add(within)
		for !healthy() {
			if time.Now().After(deadline) {
				b.Fatalf("cluster not Master,Slave,Slave within %v: %+v", within, m.Snapshot())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitHealthy(10 * time.Second)
	var detect []time.Duration
	b.ResetTimer()
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(rand.Int64N(int64(ticker))))
		_, tickBefore := masterState()
		killed := time.Now()
		c.Master().Kill()
		for {
			st, tick := masterState()
			if tick != tickBefore && (st == topology.StateSuspect || st == topology.StateFailed) {
				detect = append(detect, time.Since(killed))
				break
			}
			if time.Since(killed) > 10*time.Second {
				b.Fatalf("kill %d: master still %s after 10s", i, st)
			}
			time.Sleep(poll)
		}
		b.StopTimer()
		c.Master().Restart()
		waitHealthy(20 * time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(detect, func(i, j int) bool { return detect[i] < detect[j] })
	msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(msOf(detect[len(detect)/2]), "detect-p50-ms")
	b.ReportMetric(msOf(detect[len(detect)-1]), "detect-max-ms")
	b.ReportMetric(msOf(detect[0]), "detect-min-ms")
}
