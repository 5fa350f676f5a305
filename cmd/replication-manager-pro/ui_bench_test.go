package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/probefarm"
	"replication-manager-pro/internal/realtest"
)

// BenchmarkUIFiftyClusters measures the page with 50 clusters of 5 servers each (250
// simulated servers of internal/probefarm, monitored by the daemon at a 1 s ticker):
// the time from navigation to the first render of a cluster (nav of 50 clusters, its
// servers table, its charts), the time to switch to another cluster, and the page's JS
// heap after the first render, after visiting every cluster and after 30 s of live
// updates. One op is one page load.
//
//	go test -run '^$' -bench BenchmarkUIFiftyClusters -benchtime 5x ./cmd/replication-manager-pro
func BenchmarkUIFiftyClusters(b *testing.B) {
	const clusters, size = 50, 5
	chrome := realtest.LookPath(b, "chromium", "chromium")
	const pw = "bench-pw"
	farm, err := probefarm.Start(clusters*size, probefarm.Options{User: "root", Password: pw, ClusterSize: size})
	if err != nil {
		b.Fatal(err)
	}
	defer farm.Close()
	dir := b.TempDir()
	httpPort, err := dbproc.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	apiPort, err := dbproc.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `[Default]
monitoring-datadir = %q
monitoring-ticker = 1
api-bind = "127.0.0.1"
api-port = %d
http-bind-address = "127.0.0.1"
http-port = %d
api-https-bind = false
api-credentials = "admin:%s"
db-servers-credential = "root:%s"
replication-credential = "root:%s"
db-servers-connect-timeout = 2
force-slave-heartbeat = false
failover-mode = "manual"
`, filepath.Join(dir, "data"), apiPort, httpPort, pw, pw, pw)
	addrs := farm.Addrs()
	for c := 0; c < clusters; c++ {
		var hosts []string
		for _, a := range addrs[c*size : (c+1)*size] {
			hosts = append(hosts, a.String())
		}
		fmt.Fprintf(&cfg, "\n[c%02d]\ndb-servers-hosts = %q\n", c, strings.Join(hosts, ","))
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	dctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"monitor", "--config", cfgPath})
	go func() { done <- root.ExecuteContext(dctx) }()
	defer func() { stop(); <-done }()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := waitFor(dctx, 30*time.Second, func() bool {
		r, err := http.Get(base + "/api/status")
		return err == nil && r.Body.Close() == nil
	}); err != nil {
		b.Fatal("the daemon did not come up")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("enable-precise-memory-info", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(b.TempDir()), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#login-user`),
		chromedp.SendKeys(`#login-user`, "admin"), chromedp.SendKeys(`#login-password`, pw), chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#servers tbody tr`)); err != nil {
		b.Fatal(err)
	}
	// Every cluster monitored: 5 servers, the master first.
	rendered := func(name string) string {
		return fmt.Sprintf(`document.querySelectorAll('#clusters a').length === %d && state.cluster === %q && document.querySelectorAll('#servers tbody td.st-Master').length === 1 && document.querySelectorAll('#servers tbody tr').length === %d && trend.samples.length > 0 ? performance.now() : 0`, clusters, name, size)
	}
	heap := func() float64 {
		v, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`performance.memory.usedJSHeapSize / 1048576`))
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	var firstMs []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new document each time (a change of the fragment alone would not load one).
		if err := chromedp.Do(bctx, chromedp.Navigate(fmt.Sprintf("%s/?load=%d#c25", base, i))); err != nil {
			b.Fatal(err)
		}
		firstMs = append(firstMs, waitRendered(b, bctx, rendered("c25")))
	}
	b.StopTimer()
	heapFirst := heap()
	// Switch through every cluster, as an operator clicking down the list.
	var switchMs []float64
	for c := 0; c < clusters; c++ {
		name := fmt.Sprintf("c%02d", c)
		t0, err := chromedp.Run(bctx, chromedp.Evaluate[float64](fmt.Sprintf(`(select(%q), performance.now())`, name)))
		if err != nil {
			b.Fatal(err)
		}
		switchMs = append(switchMs, waitRendered(b, bctx, rendered(name))-t0)
	}
	heapAll := heap()
	time.Sleep(30 * time.Second) // live updates of the last cluster: a sample and a servers push a second
	heapLive := heap()
	nodes, _ := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementsByTagName('*').length`))
	sort.Float64s(firstMs)
	sort.Float64s(switchMs)
	b.ReportMetric(firstMs[len(firstMs)/2], "first-render-ms")
	b.ReportMetric(switchMs[len(switchMs)/2], "switch-p50-ms")
	b.ReportMetric(switchMs[len(switchMs)*9/10], "switch-p90-ms")
	b.ReportMetric(heapFirst, "heap-first-MB")
	b.ReportMetric(heapAll, "heap-50-clusters-MB")
	b.ReportMetric(heapLive, "heap-after-30s-MB")
	b.ReportMetric(nodes, "dom-nodes")
}

// waitRendered polls the page every 10 ms until js gives a time (performance.now() when
// the page shows what it should) and returns it.
func waitRendered(b *testing.B, ctx context.Context, js string) float64 {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js)); err == nil && v > 0 {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("the page did not render: %s", js)
	return 0
}
