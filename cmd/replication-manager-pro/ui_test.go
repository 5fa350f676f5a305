package main

import (
	"context"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the topology page's screenshot to docs/ui.png")

// TestUIEndToEnd drives the web UI in headless Chromium against the demo cluster: log in,
// see the 3-node topology, ask a switchover to a chosen replica, see the new master.
// It starts mariadbd, haproxy and Chromium, so -short skips it.
func TestUIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the web UI test (mariadbd, haproxy, Chromium) in -short mode")
	}
	chrome := realtest.LookPath(t, "chromium", "chromium")
	realtest.LookPath(t, "haproxy", "haproxy")
	realtest.LookPath(t, dbproc.MariadbdPath, "mariadb-server")
	dir, err := prepareDemoDir(filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := startDemo(ctx, dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	url := fmt.Sprintf("http://127.0.0.1:%d/", env.HTTPPort)
	states := `Array.from(document.querySelectorAll('#servers tbody tr')).map(r => r.dataset.server + '=' + r.querySelector('td.state').textContent).join(',')`
	if err := chromedp.Do(bctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(`#login-user`),
		chromedp.SendKeys(`#login-user`, "admin"),
		chromedp.SendKeys(`#login-password`, env.AdminPassword),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#servers tbody tr`),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	want := fmt.Sprintf("%s=Master,%s=Slave,%s=Slave", env.Hosts[0], env.Hosts[1], env.Hosts[2])
	waitUI(t, bctx, states, want)
	// The master's GTID position shows once a refresh follows the demo's first transaction.
	waitUI(t, bctx, `document.querySelector('#servers tbody tr td:nth-child(4)').textContent`, "0-1-1")
	topo, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('topology').textContent`))
	if err != nil || !strings.Contains(topo, env.Hosts[0]) {
		t.Fatalf("topology diagram lacks the master: %q %v", topo, err)
	}

	// The managers panel: the demo's manager works alone.
	waitUI(t, bctx, `document.querySelector('#managers tbody').textContent`, "this manager works alone and leads every cluster")

	// A replication tree is drawn one row per depth, each server under its source: the
	// layout of master -> relay -> {leaf1, leaf2}, master -> replica, in the page itself.
	layout, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => {
		const S = (u, src, st) => ({url: u, state: st || "Slave", replications: src ? [{masterHost: src.split(":")[0], masterPort: src.split(":")[1]}] : []});
		const l = treeLayout([S("l1:1", "r:1"), S("m:1", null, "Master"), S("r:1", "m:1", "Relay"), S("l2:1", "r:1"), S("d:1", "m:1")]);
		return l.slots.map((x) => x.s.url + "@" + x.d + ":" + x.x).sort().join(" ") + " width=" + l.width + " depth=" + l.depth;
	})()`))
	if want := "d:1@1:2 l1:1@2:0 l2:1@2:1 m:1@0:1.25 r:1@1:0.5 width=3 depth=2"; err != nil || layout != want {
		t.Fatalf("tree layout %q (%v), want %q", layout, err, want)
	}

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(t.TempDir(), "ui.png")
	if *updateScreenshot {
		shotPath = filepath.Join("..", "..", "docs", "ui.png")
	}
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(shotPath); err != nil {
		t.Fatal(err)
	} else if _, err := png.Decode(f); err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}

	// Switchover to the third server, picked in the UI.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(`#switchover-target`, env.Hosts[2]),
		chromedp.Click(`#switchover-btn`),
	); err != nil {
		t.Fatalf("switchover click: %v", err)
	}
	waitUI(t, bctx, states, fmt.Sprintf("%s=Slave,%s=Slave,%s=Master", env.Hosts[0], env.Hosts[1], env.Hosts[2]))
	status, _ := chromedp.Run(bctx, chromedp.Text(`#action-status`))
	if !strings.Contains(status, "done") {
		t.Fatalf("action status %q", status)
	}

	// A tenant database requested through the API shows in the cluster's page, its URLs
	// without the password.
	apiBase := fmt.Sprintf("http://127.0.0.1:%d", env.HTTPPort)
	token, err := demoLogin(apiBase, env.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", apiBase+"/api/clusters/demo/databases", strings.NewReader(`{"reference": "wordpress", "db_password": "ui-secret-pw"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST databases: %d", res.StatusCode)
	}
	row := `Array.from(document.querySelectorAll('#databases tbody tr')).map(r => r.textContent).join('|')`
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := chromedp.Run(bctx, chromedp.Evaluate[string](row))
		if err == nil && strings.Contains(got, "wordpressdb_wordpresswordpress") && strings.Contains(got, "mysql://wordpress:xxxxx@") {
			if strings.Contains(got, "ui-secret-pw") {
				t.Fatalf("the page shows the tenant's password: %s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant databases table: %q (%v)", got, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func waitUI(t *testing.T, ctx context.Context, js, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if got = v; err == nil && got == want {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("UI shows %q, want %q", got, want)
}
