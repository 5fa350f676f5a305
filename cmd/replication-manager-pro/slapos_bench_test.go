package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/agent"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/slaposim"
	"replication-manager-pro/topology"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(p*float64(len(s)-1)+0.5)]
}

// BenchmarkSlapOSNeedStartToAccepting: the manager's start of a stopped database (the API's
// start sets cookie_waitstart, what need-start answers) to mariadbd accepting connections in
// its partition, 10 times each for an agent on the watch route and an agent polling the
// legacy need-* routes every 2 s (SlapOS' cron script polls every minute, then sleeps 5 s).
// The database is stopped as the SlapOS orchestrator stops it (SQL SHUTDOWN, through the
// API) before each start. Fixed run time: 20 starts whatever b.N.
func BenchmarkSlapOSNeedStartToAccepting(b *testing.B) {
	realtest.LookPath(b, "mariadbd", "mariadb-server")
	d := renderAndServe(b, slaposRequest)
	ctx := context.Background()
	api := d.api()
	part := func(i int) string { return filepath.Join(d.out, "partitions", fmt.Sprintf("cluster1-mariadb-%d", i)) }
	run := func(name string, i int, legacy bool) {
		addr := ipv6.HostPort{Host: "::1", Port: slapos.DatabasePortBase + slapos.DatabasePortStep*i}
		a := startAgent(b, agent.Config{Manager: d.plainURL(), Cluster: "cluster1", Addr: addr, Partition: part(i),
			Credential: d.creds[addr.String()], HeartbeatUser: slapos.HeartbeatUser, Legacy: legacy, PollInterval: 2 * time.Second})
		agentWait(b, 2*time.Minute, "first start", func() bool { return accepting(addr) })
		id := topology.ServerIDFor(addr)
		agentWait(b, 30*time.Second, "the manager sees it", func() bool {
			code, body, _ := api.Do(ctx, http.MethodGet, "/api/clusters/cluster1/topology/servers", nil, 10*time.Second)
			return code == 200 && strings.Contains(string(body), id) && strings.Contains(string(body), "StandAlone")
		})
		var samples []time.Duration
		for n := 0; n < 10; n++ {
			if code, _, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id+"/actions/stop", nil, time.Minute); err != nil || code != 200 {
				b.Fatalf("stop: %d %v", code, err)
			}
			agentWait(b, time.Minute, "stopped", func() bool {
				st, _ := a.a.Status(ctx)
				return !accepting(addr) && st.State == "stopped"
			})
			t0 := time.Now()
			if code, _, err := api.Do(ctx, http.MethodPost, "/api/clusters/cluster1/servers/"+id+"/actions/start", nil, time.Minute); err != nil || code != 200 {
				b.Fatalf("start: %d %v", code, err)
			}
			agentWait(b, time.Minute, "started", func() bool { return accepting(addr) })
			samples = append(samples, time.Since(t0))
		}
		b.ReportMetric(float64(percentile(samples, 0.5).Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(percentile(samples, 1).Milliseconds()), name+"-max-ms")
		a.stop()
	}
	for i := 0; i < b.N; i++ {
		run("watch", 0, false)
		run("legacy-2s", 1, true)
	}
}

// BenchmarkSlapOSRequestToTenantURL: the seed's request (4 databases on one computer, its
// tag list) and one shared instance, given to the node simulator, to every database
// replicating and the shared instance's published IPv6 URL answering over TLS through the
// proxy: render, computers, agents (bundle, data directory, mariadbd), replication
// bootstrap, tenant database. Network namespaces when root. Fixed run time: 3 runs.
func BenchmarkSlapOSRequestToTenantURL(b *testing.B) {
	realtest.LookPath(b, "mariadbd", "mariadb-server")
	realtest.LookPath(b, "haproxy", "haproxy")
	ctx := context.Background()
	shared := filepath.Join(b.TempDir(), "shared.json")
	os.WriteFile(shared, []byte(`[{"slave_reference": "SOFTINST-42", "slave_title": "wordpress"}]`), 0o600)
	for i := 0; i < b.N; i++ {
		var samples []time.Duration
		for n := 0; n < 3; n++ {
			t0 := time.Now()
			dir, err := os.MkdirTemp("", "rmpsim") // short: HAProxy's socket path must fit 97 characters
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			sim, err := slaposim.Start(ctx, slaposim.Options{Parameters: slaposRequest, SharedInstances: shared,
				Dir: dir, Self: simSelf, MonitorArgs: []string{"--monitoring-ticker", "1"}})
			if err != nil {
				b.Fatal(err)
			}
			p := sim.Published.Shared["SOFTINST-42"]
			err = waitForT(ctx, time.Minute, func() bool { _, err := slaposim.TenantAnswers(ctx, p.URL, p.SSLCA); return err == nil })
			samples = append(samples, time.Since(t0))
			sim.Close()
			if err != nil {
				b.Fatalf("tenant URL: %v", err)
			}
		}
		b.ReportMetric(float64(percentile(samples, 0.5).Milliseconds()), "p50-ms")
		b.ReportMetric(float64(percentile(samples, 1).Milliseconds()), "max-ms")
	}
}
