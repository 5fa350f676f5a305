package api

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// BenchmarkClustersList measures GET /api/clusters over the TLS listener with 50 concurrent
// keep-alive clients while 3 real 3-node clusters are monitored (ticker 0.5 s), and
// reports the 99th percentile latency (p99-ms) and the median (p50-ms), with gzip (Go's
// client default, browsers) and without (curl's default).
//
//	go test -run '^$' -bench BenchmarkClustersList -benchtime 5000x ./api
func BenchmarkClustersList(b *testing.B) {
	var defs []clusterDef
	for i := 1; i <= 3; i++ {
		c := testenv.StartCluster(b, 3)
		var hosts []string
		for _, s := range c.Servers {
			hosts = append(hosts, s.Addr())
		}
		defs = append(defs, realCluster(fmt.Sprintf("cluster%d", i), hosts, "monitoring-ticker = 0.5"))
	}
	dir := b.TempDir()
	e := newEnv(b, dir, writeConfig(b, dir, "", defs...), nil)
	e.start()
	tok := e.login("admin", apiPassword)
	for _, d := range defs {
		waitFor(b, d.name+" failable", func() bool {
			m, _ := e.fleet.Get(d.name)
			s := m.Monitor.Snapshot()
			return s != nil && s.IsFailable && s.IsAllDBUp
		})
	}
	const clients = 50
	url := e.apiURL("/api/clusters")
	for _, gz := range []bool{true, false} {
		name := fmt.Sprintf("%dclients-gzip", clients)
		if !gz {
			name = fmt.Sprintf("%dclients-identity", clients)
		}
		benchList(b, name, url, tok, clients, !gz)
	}
}

// benchList runs b.N requests from clients concurrent keep-alive connections; identity
// disables the transparent gzip of Go's client (as curl without --compressed).
func benchList(b *testing.B, name, url, tok string, clients int, identity bool) {
	hc := httpsClient()
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
	hc.Transport.(*http.Transport).DisableCompression = identity

	get := func() (int, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return 0, fmt.Errorf("HTTP %d", res.StatusCode)
		}
		return int(n), nil
	}
	// Open the 50 connections (TLS handshakes) before measuring.
	var warm sync.WaitGroup
	for range clients {
		warm.Add(1)
		go func() { defer warm.Done(); get() }()
	}
	warm.Wait()
	size, err := get()
	if err != nil {
		b.Fatal(err)
	}

	b.Run(name, func(b *testing.B) {
		lat := make([]time.Duration, b.N)
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					start := time.Now()
					if _, err := get(); err != nil {
						failed.Add(1)
					}
					lat[i] = time.Since(start)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d requests failed", n)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		pct := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(float64(size), "bytes/resp")
	})
}
