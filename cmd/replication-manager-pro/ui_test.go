package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the UI's screenshots to docs/ui*.png")

// TestUIEndToEnd drives the web UI in headless Chromium against the demo cluster (three
// mariadbd, ProxySQL or HAProxy, the daemon), one scenario through every panel:
//
//   - log in, see the topology; the live stream says "live";
//   - a state change made behind the page's back (maintenance through the API) shows
//     without a reload, pushed by the stream;
//   - a lag injected on a replica (its SQL thread held by a table lock while the master
//     writes) shows in the lag chart, and the writes in the commits chart;
//   - a destructive action asks first and says what it will do: a failover of a live
//     master shows the refusal of its dry run; a switchover shows its plan's steps, then
//     runs once confirmed;
//   - the switchover's timeline, opened from the event list, shows its steps and their
//     durations;
//   - the proxies panel shows the router's backends and intent after the switchover;
//   - a tenant database requested from the page, its URLs without the password, then
//     dropped after a confirmation;
//   - a logical backup started from the page, its job followed until done;
//   - the master killed: the monitor's automatic failover shows, and its timeline too;
//   - a setting changed in the settings view, still there (source "saved") after the
//     daemon restarts, while the page said it was stale and reconnected by itself.
//
// It starts mariadbd, a proxy and Chromium, so -short skips it. -update-screenshot writes
// docs/ui.png and docs/ui-*.png.
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
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	daemonLog := &syncBuffer{}
	env, err := startDemo(ctx, dir, daemonLog)
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
	ui := &uiDriver{t: t, ctx: bctx, log: daemonLog}

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
	ui.wait(states, want)
	// The master's GTID position shows once the stream pushes the demo's first transaction.
	ui.wait(`document.querySelector('#servers tbody tr td:nth-child(4)').textContent`, "0-1-1")
	ui.wait(`document.getElementById('live').textContent`, "live")
	if topo := ui.eval(`document.getElementById('topology').textContent`); !strings.Contains(topo, env.Hosts[0]) {
		t.Fatalf("topology diagram lacks the master: %q", topo)
	}

	// A replication tree is drawn one row per depth, each server under its source: the
	// layout of master -> relay -> {leaf1, leaf2}, master -> replica, in the page itself.
	layout := ui.eval(`(() => {
		const S = (u, src, st) => ({url: u, state: st || "Slave", replications: src ? [{masterHost: src.split(":")[0], masterPort: src.split(":")[1]}] : []});
		const l = treeLayout([S("l1:1", "r:1"), S("m:1", null, "Master"), S("r:1", "m:1", "Relay"), S("l2:1", "r:1"), S("d:1", "m:1")]);
		return l.slots.map((x) => x.s.url + "@" + x.d + ":" + x.x).sort().join(" ") + " width=" + l.width + " depth=" + l.depth;
	})()`)
	if want := "d:1@1:2 l1:1@2:0 l2:1@2:1 m:1@0:1.25 r:1@1:0.5 width=3 depth=2"; layout != want {
		t.Fatalf("tree layout %q, want %q", layout, want)
	}

	// Live update: maintenance set through the API, not the page, shows without a reload
	// (nothing in the page polls the servers: the stream pushes them).
	apiBase := fmt.Sprintf("http://127.0.0.1:%d", env.HTTPPort)
	token, err := demoLogin(apiBase, env.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	replicaID := ui.eval(fmt.Sprintf(`state.servers.find(s => s.url === %q).id`, env.Hosts[1]))
	maintBtn := fmt.Sprintf(`document.querySelector('#servers tbody tr[data-server="%s"] button').textContent`, env.Hosts[1])
	if _, err := demoPost(apiBase+"/api/clusters/demo/servers/"+replicaID+"/actions/set-maintenance", token); err != nil {
		t.Fatal(err)
	}
	ui.wait(maintBtn, "End maintenance")
	if _, err := demoPost(apiBase+"/api/clusters/demo/servers/"+replicaID+"/actions/del-maintenance", token); err != nil {
		t.Fatal(err)
	}
	ui.wait(maintBtn, "Maintenance")

	// A lag injected on the second server shows in its lag chart; the writes show in the
	// master's commits chart.
	injectLag(t, ctx, env, 5*time.Second)
	lagMax := fmt.Sprintf(`(document.querySelector('#legend-lag .legend-item[data-series="%s"]') || {dataset: {}}).dataset.max || ""`, env.Hosts[1])
	ui.waitFor(lagMax, "a lag of at least 3 s in the chart", func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f >= 3 })
	ui.waitFor(`document.querySelector('#legend-commits .legend-item').dataset.max || ""`, "commits in the chart",
		func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f > 0 })
	ui.screenshot("ui.png")

	// A failover of a master that answers: the dialog shows the dry run's refusal, the
	// confirmation is disabled; cancelled, nothing runs.
	ui.js(`document.getElementById('failover-btn').click()`)
	ui.wait(`document.getElementById('confirm').open ? 'open' : ''`, "open")
	ui.waitFor(`document.getElementById('confirm-plan').textContent`, "the failover's refusal", func(v string) bool { return strings.Contains(v, "Refused") })
	if ui.eval(`String(document.getElementById('confirm-ok').disabled)`) != "true" {
		t.Fatal("the failover of a live master can be confirmed")
	}
	ui.js(`document.getElementById('confirm-cancel').click()`)
	ui.wait(`document.getElementById('action-status').textContent`, "failover: cancelled")
	// Maintenance of the master asks too (its writes would drain).
	ui.js(fmt.Sprintf(`document.querySelector('#servers tbody tr[data-server="%s"] button').click()`, env.Hosts[0]))
	ui.waitFor(`document.getElementById('confirm').open ? document.getElementById('confirm-text').textContent : ''`, "the master's maintenance confirmation",
		func(v string) bool { return strings.Contains(v, "drain") })
	ui.js(`document.getElementById('confirm-cancel').click()`)
	ui.wait(`document.getElementById('action-status').textContent`, "maintenance on for "+env.Hosts[0]+": cancelled")

	// Switchover to the third server, picked in the page: the dialog lists the plan's
	// steps first.
	if err := chromedp.Do(bctx, chromedp.SetValue(`#switchover-target`, env.Hosts[2])); err != nil {
		t.Fatal(err)
	}
	ui.js(`document.getElementById('switchover-btn').click()`)
	ui.waitFor(`Array.from(document.querySelectorAll('#confirm-plan li')).map(l => l.textContent).join('|')`, "the switchover's plan",
		func(v string) bool { return strings.Contains(v, "promote") && strings.Contains(v, env.Hosts[2]) })
	ui.screenshotViewport("ui-confirm.png")
	ui.js(`document.getElementById('confirm-ok').click()`)
	ui.wait(states, fmt.Sprintf("%s=Slave,%s=Slave,%s=Master", env.Hosts[0], env.Hosts[1], env.Hosts[2]))
	ui.waitFor(`document.getElementById('action-status').textContent`, "the switchover done", func(v string) bool { return strings.Contains(v, "done") })

	// Its timeline, opened from the event list.
	// (the bootstrap's events have links too: take a switchover step's)
	switchLink := `Array.from(document.querySelectorAll('#events tbody tr')).find(r => r.textContent.includes('switchover-step') && r.querySelector('a.timeline-link'))`
	ui.waitFor(`String(!!`+switchLink+`)`, "a timeline link on the switchover's events", func(v string) bool { return v == "true" })
	ui.js(switchLink + `.querySelector('a.timeline-link').click()`)
	steps := `Array.from(document.querySelectorAll('#plans .timeline.focus .gantt-row')).map(r => r.dataset.step + '=' + r.querySelector('.gantt-dur').textContent).join(',')`
	ui.waitFor(steps, "the switchover's steps", func(v string) bool {
		return strings.Contains(v, "freeze-old-master=") && strings.Contains(v, "promote=") && strings.Contains(v, " ms")
	})
	if head := ui.eval(`document.querySelector('#plans .timeline.focus h4').textContent`); !strings.HasPrefix(head, "switchover") {
		t.Fatalf("focused timeline %q", head)
	}

	// Proxies: the new master is the writer, and the proxy routes writes to it.
	ui.js(`showTab('proxies')`)
	writer := fmt.Sprintf(`(() => { const r = document.querySelector('#proxies tr[data-server="%s"]'); return r ? r.textContent : ''; })()`, env.Hosts[2])
	ui.waitFor(writer, "the new master's routing", func(v string) bool {
		return strings.Contains(v, "writer") && (strings.Contains(v, "ONLINE") || strings.Contains(v, "ready"))
	})
	ui.screenshot("ui-proxies.png")

	// Tenant databases: requested from the page, URLs shown without the password.
	ui.js(`showTab('databases')`)
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(`#db-reference`, "wordpress"),
		chromedp.SendKeys(`#db-password`, "ui-secret-pw"),
		chromedp.Click(`#db-create`),
	); err != nil {
		t.Fatal(err)
	}
	row := `Array.from(document.querySelectorAll('#databases tbody tr')).map(r => r.textContent).join('|')`
	got := ui.waitFor(row, "the tenant database", func(v string) bool {
		return strings.Contains(v, "wordpressdb_wordpresswordpress") && strings.Contains(v, "mysql://wordpress:xxxxx@")
	})
	if strings.Contains(got, "ui-secret-pw") || strings.Contains(ui.eval(`document.body.innerHTML`), "ui-secret-pw") {
		t.Fatalf("the page shows the tenant's password: %s", got)
	}
	ui.screenshot("ui-databases.png")
	ui.js(`document.querySelector('#databases tr[data-reference="wordpress"] button.danger').click()`)
	ui.waitFor(`document.getElementById('confirm-text').textContent`, "the drop's confirmation", func(v string) bool { return strings.Contains(v, "cannot be undone") })
	ui.js(`document.getElementById('confirm-ok').click()`)
	ui.waitFor(row, "the database dropped", func(v string) bool { return !strings.Contains(v, "wordpress") })

	// A logical backup of a replica, its job followed until done.
	ui.js(`showTab('backups')`)
	ui.js(fmt.Sprintf(`document.getElementById('backup-server').value = state.servers.find(s => s.url === %q).id`, env.Hosts[1]))
	ui.js(`document.getElementById('backup-start').click()`)
	ui.waitFor(`Array.from(document.querySelectorAll('#jobs tbody tr')).map(r => r.textContent).join('|')`, "the backup job done",
		func(v string) bool { return strings.Contains(v, env.Hosts[1]) && strings.Contains(v, "done") })
	ui.waitFor(`String(document.querySelectorAll('#backups tbody tr[data-backup]').length)`, "the backup listed", func(v string) bool { return v != "0" })
	ui.screenshot("ui-backups.png")

	// A failover: the master (the third server since the switchover) is killed; the
	// monitor fails over by itself, and the page draws that failover's steps too.
	env.dbs[2].Kill()
	ui.waitFor(states, "a new master, the old one failed", func(v string) bool {
		return strings.Contains(v, env.Hosts[2]+"=Failed") && strings.Contains(v, "=Master")
	})
	failLink := `Array.from(document.querySelectorAll('#events tbody tr')).find(r => r.textContent.includes('failover-step') && r.querySelector('a.timeline-link'))`
	ui.wait(`String(!!`+failLink+`)`, "true")
	ui.js(failLink + `.querySelector('a.timeline-link').click()`)
	ui.waitFor(steps, "the failover's steps", func(v string) bool { return strings.Contains(v, "promote=") && strings.Contains(v, " ms") })
	if head := ui.eval(`document.querySelector('#plans .timeline.focus h4').textContent`); !strings.HasPrefix(head, "failover") || !strings.Contains(head, "monitor") {
		t.Fatalf("focused timeline %q, want the monitor's failover", head)
	}
	ui.screenshot("ui-timeline.png")
	master := ui.eval(`state.servers.find(s => s.state === 'Master').url`)
	// Both are in the crash list, the failover first.
	req, _ := http.NewRequest(http.MethodGet, apiBase+"/api/clusters/demo/topology/crashes", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var crashes []struct{ Kind string }
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(res.Body).Decode(&crashes)
		res.Body.Close()
	}
	if len(crashes) != 2 || crashes[0].Kind != "failover" || crashes[1].Kind != "switchover" {
		t.Fatalf("topology/crashes: %+v, want the failover then the switchover", crashes)
	}

	// One server, live, from its row's Inspect button: the master's processlist (its
	// replica's binlog dump thread), its slow queries or why there are none, its error log.
	ui.js(fmt.Sprintf(`document.querySelector('#servers tbody tr[data-server="%s"] button.inspect').click()`, master))
	ui.wait(`state.tab`, "server")
	ui.waitFor(`document.querySelector('#processlist tbody').textContent`, "the master's processlist", func(v string) bool { return strings.Contains(v, "Binlog Dump") })
	// The demo's servers keep the slow log off: the page says so and what to do.
	ui.waitFor(`document.querySelector('#slow-digests tbody').textContent`, "why there are no slow queries", func(v string) bool {
		return strings.Contains(v, "slow_query_log is OFF") && strings.Contains(v, "log_output=TABLE")
	})
	ui.waitFor(`document.querySelector('#errorlog tbody').textContent`, "its error log", func(v string) bool { return strings.Contains(v, "ready for connections") })
	ui.screenshot("ui-server.png")

	// Managers: the demo's manager works alone.
	ui.js(`showTab('managers')`)
	ui.wait(`document.querySelector('#managers tbody').textContent`, "this manager works alone and leads every cluster")

	// Settings: failover-limit set in the page is saved, and stays after a restart.
	ui.js(`showTab('settings')`)
	limit := `(() => { const r = document.querySelector('#settings tr[data-key="failover-limit"]'); return r ? r.querySelector('input').value + ' ' + r.querySelector('td.source').textContent : ''; })()`
	ui.waitFor(limit, "failover-limit in the settings", func(v string) bool { return strings.HasSuffix(v, " default") })
	ui.js(`(() => { const i = document.querySelector('#settings tr[data-key="failover-limit"] input'); i.value = '7'; i.form.requestSubmit(); })()`)
	ui.wait(limit, "7 saved")
	ui.js(`document.getElementById('settings-filter').value = 'failover-'; renderSettings()`)
	ui.screenshot("ui-settings.png")

	before := ui.eval(`String(Date.now())`)
	restartDemoDaemon(t, env)
	ui.wait(`String((live.lastStale || 0) > `+before+`)`, "true")  // the page said it was stale...
	ui.wait(`document.getElementById('live').textContent`, "live") // ...and reconnected by itself
	ui.js(`loadSettings()`)
	ui.wait(limit, "7 saved")
	ui.wait(`(state.servers.find(s => s.state === 'Master') || {}).url || ''`, master)

	// On a phone the page fits the screen's width (wide tables scroll inside their box);
	// with the system in dark mode, so is the page.
	dark := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	})
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), dark); err != nil {
		t.Fatal(err)
	}
	ui.js(`showTab('overview')`)
	ui.wait(`String(document.documentElement.scrollWidth <= window.innerWidth + 1)`, "true")
	ui.wait(`getComputedStyle(document.body).backgroundColor`, "rgb(18, 22, 29)")
	ui.screenshotViewport("ui-phone.png")
}

// uiDriver runs JavaScript in the page and waits for what it shows.
type uiDriver struct {
	t   *testing.T
	ctx context.Context
	log *syncBuffer // the daemon's log, shown when a wait fails
}

func (u *uiDriver) eval(js string) string {
	u.t.Helper()
	v, err := chromedp.Run(u.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		u.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// js runs a statement whose value is not needed.
func (u *uiDriver) js(js string) {
	u.t.Helper()
	if _, err := chromedp.Run(u.ctx, chromedp.Evaluate[any](js+"; null")); err != nil {
		u.t.Fatalf("run %s: %v", js, err)
	}
}

func (u *uiDriver) wait(js, want string) {
	u.t.Helper()
	u.waitFor(js, fmt.Sprintf("%q", want), func(v string) bool { return v == want })
}

// waitFor polls js until ok accepts its value (60 s at most) and returns the value.
func (u *uiDriver) waitFor(js, what string, ok func(string) bool) string {
	u.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got string
	var err error
	for time.Now().Before(deadline) {
		got, err = chromedp.Run(u.ctx, chromedp.Evaluate[string](js))
		if err == nil && ok(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	status, _ := chromedp.Run(u.ctx, chromedp.Evaluate[string](`document.getElementById('action-status').textContent`))
	logText := u.log.String()
	if len(logText) > 6000 {
		logText = logText[len(logText)-6000:]
	}
	u.t.Fatalf("waiting for %s: the page shows %q (%v); action status %q; the daemon's log ends with:\n%s", what, got, err, status, logText)
	return ""
}

// screenshot takes the whole page; with -update-screenshot it goes to docs/.
func (u *uiDriver) screenshot(name string) {
	u.t.Helper()
	shot, err := chromedp.Run(u.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Fatal(err)
	}
	u.save(name, shot)
}

// screenshotViewport takes what the window shows (a modal dialog over the page).
func (u *uiDriver) screenshotViewport(name string) {
	u.t.Helper()
	shot, err := chromedp.Run(u.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		u.t.Fatal(err)
	}
	u.save(name, shot)
}

func (u *uiDriver) save(name string, shot []byte) {
	u.t.Helper()
	path := filepath.Join(u.t.TempDir(), name)
	if *updateScreenshot {
		path = filepath.Join("..", "..", "docs", name)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		u.t.Fatal(err)
	}
	if f, err := os.Open(path); err != nil {
		u.t.Fatal(err)
	} else if _, err := png.Decode(f); err != nil {
		f.Close()
		u.t.Fatalf("%s is not a PNG: %v", name, err)
	} else {
		f.Close()
	}
}

// injectLag holds the SQL thread of the demo's second server for d: a session there
// holds a read lock on a table the master writes to every 100 ms, so the replica's
// Seconds_Behind_Master grows by a second each second. The app account (ALL on demo.*)
// is enough.
func injectLag(t *testing.T, ctx context.Context, env *demoEnv, d time.Duration) {
	t.Helper()
	open := func(addr string) *sql.DB {
		db, err := sql.Open("mysql", "app:"+env.AppPassword+"@tcp("+addr+")/demo?timeout=5s")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	master, replica := open(env.Hosts[0]), open(env.Hosts[1])
	if _, err := master.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS demo.lag_probe (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := replica.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'demo' AND table_name = 'lag_probe'").Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the table did not replicate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := replica.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "LOCK TABLES demo.lag_probe READ"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := master.ExecContext(ctx, "INSERT INTO demo.lag_probe () VALUES ()"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
}

// restartDemoDaemon stops the demo's daemon and starts it again on the same
// configuration, ports and data directory (the servers and the proxy keep running).
func restartDemoDaemon(t *testing.T, e *demoEnv) {
	t.Helper()
	e.cancel()
	select {
	case <-e.daemon:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	dctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.daemon = cancel, make(chan error, 1)
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"monitor", "--config", filepath.Join(e.Dir, "config.toml")})
	go func() { e.daemon <- root.ExecuteContext(dctx) }()
}
