package api

import (
	"encoding/json"
	"testing"
	"time"

	"replication-manager-pro/cluster"
)

// TestPlanTimelines: the typed observations of a plan become its timeline, steps placed
// by their end and duration; a new plan closes one that never ended; the list is
// bounded and newest first.
func TestPlanTimelines(t *testing.T) {
	p := newPlanTimelines()
	t0 := time.Unix(1000, 0)
	obs := func(k cluster.ObsKind, step string, at time.Duration, d time.Duration, errText string) {
		p.observe(cluster.ActionEvent{Kind: k, Cluster: "C1", Plan: cluster.PlanSwitchover, Origin: "api", Step: cluster.StepKind(step),
			Time: t0.Add(at), Duration: d, Error: errText})
	}
	obs(cluster.ObsPlanStarted, "", 0, 0, "")
	obs(cluster.ObsStepDone, "freeze-old-master", 30*time.Millisecond, 30*time.Millisecond, "")
	obs(cluster.ObsStepDone, "promote", 50*time.Millisecond, 10*time.Millisecond, "")
	running := p.list("c1")
	if len(running) != 1 || !running[0].Running || len(running[0].Steps) != 2 {
		t.Fatalf("running plan %+v", running)
	}
	obs(cluster.ObsPlanDone, "", 60*time.Millisecond, 60*time.Millisecond, "")
	l := p.list("c1")
	tl := l[0]
	if tl.Running || tl.Duration != 60*time.Millisecond || tl.Kind != "switchover" || tl.Origin != "api" {
		t.Fatalf("timeline %+v", tl)
	}
	if s := tl.Steps[1]; s.Step != "promote" || s.Offset != 40*time.Millisecond || s.Duration != 10*time.Millisecond {
		t.Errorf("promote step %+v", s)
	}
	// A plan that never ended is closed by the next one.
	obs(cluster.ObsPlanStarted, "", time.Second, 0, "")
	obs(cluster.ObsPlanStarted, "", 2*time.Second, 0, "")
	l = p.list("c1")
	if len(l) != 3 || !l[0].Running || l[1].Running || l[1].Error != "interrupted" {
		t.Fatalf("after an unfinished plan: %+v", l)
	}
	for i := 0; i < timelinesPerCluster+5; i++ {
		obs(cluster.ObsPlanStarted, "", time.Duration(3+i)*time.Second, 0, "")
	}
	if l = p.list("c1"); len(l) != timelinesPerCluster || l[0].ID <= l[1].ID {
		t.Errorf("%d timelines kept, ids %d %d", len(l), l[0].ID, l[1].ID)
	}
	if len(p.list("other")) != 0 {
		t.Error("another cluster's plans")
	}
}

// TestSettingsViewSources: every key with its source; a key set through the API is
// "saved" (monitoring-save-config is on by default) and stays after a reload, a key of
// the files is "file", secrets are masked, listeners are not editable.
func TestSettingsViewSources(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	if r := e.do("POST", "/api/clusters/c1/settings/actions/set/failover-limit/7", tok, nil); r.code != 200 {
		t.Fatalf("set: %d %s", r.code, r.body)
	}
	view := func() map[string]SettingView {
		r := e.do("GET", "/api/clusters/c1/settings/keys", tok, nil)
		if r.code != 200 {
			t.Fatalf("settings view: %d %s", r.code, r.body)
		}
		assertNoSecret(t, "settings view", r)
		var v SettingsView
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatal(err)
		}
		if !v.SaveConfig || v.FilesError != "" || len(v.Keys) < 200 {
			t.Fatalf("view: save %v, error %q, %d keys", v.SaveConfig, v.FilesError, len(v.Keys))
		}
		out := map[string]SettingView{}
		for _, k := range v.Keys {
			out[k.Key] = k
		}
		return out
	}
	check := func(when string, keys map[string]SettingView) {
		t.Helper()
		if k := keys["failover-limit"]; k.Value != "7" || k.Source != "saved" || !k.Editable || k.Restart != "" {
			t.Errorf("%s: failover-limit %+v", when, k)
		}
		if k := keys["db-servers-connect-timeout"]; k.Source != "file" || k.Section != "Default" || k.File != e.cfgPath {
			t.Errorf("%s: db-servers-connect-timeout %+v", when, k)
		}
		if k := keys["db-servers-credential"]; !k.Secret || k.Value != "*:*" || k.Editable {
			t.Errorf("%s: db-servers-credential %+v", when, k)
		}
		if k := keys["switchover-wait-kill"]; k.Source != "default" || k.Value != k.Default {
			t.Errorf("%s: switchover-wait-kill %+v", when, k)
		}
		if keys["failover-pre-script"].Editable || keys["backup-mysqldump-path"].Editable {
			t.Errorf("%s: scripts and binaries editable", when)
		}
		if keys["api-port"].Editable || keys["monitoring-datadir"].Editable || !keys["autorejoin"].Editable {
			t.Errorf("%s: editable api-port %v monitoring-datadir %v autorejoin %v", when, keys["api-port"].Editable,
				keys["monitoring-datadir"].Editable, keys["autorejoin"].Editable)
		}
	}
	check("after the change", view())
	if r := e.do("POST", "/api/clusters/c1/settings/actions/reload", tok, nil); r.code != 200 {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	check("after a reload", view())
	// Without a grant on the settings: 403.
	if r := e.do("GET", "/api/clusters/c1/settings/keys", e.login("foo", "foo-pw"), nil); r.code != 403 {
		t.Errorf("user without grant: %d", r.code)
	}
}

// TestRoutingViewWithoutRouters: a cluster without proxies answers an empty list.
func TestRoutingViewWithoutRouters(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	r := e.do("GET", "/api/clusters/c1/routing", e.login("admin", apiPassword), nil)
	if r.code != 200 || r.body != "{\"routers\":[]}\n" {
		t.Fatalf("routing: %d %q", r.code, r.body)
	}
}
