package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

// fakeProxies is a ProxyControl with one ProxySQL, px1, recording the actions it runs.
type fakeProxies struct{ actions []string }

func (f *fakeProxies) Proxies(context.Context, string) ([]Proxy, error) {
	return []Proxy{{ID: "px1", Name: "127.0.0.1", Type: "proxysql", Host: "127.0.0.1", Port: "6032", WritePort: 3306,
		State: "ProxyRunning"}}, nil
}

func (f *fakeProxies) ProxyAction(_ context.Context, _, id, action string) error {
	if id != "px1" {
		return ErrUnknownProxy
	}
	f.actions = append(f.actions, action)
	return nil
}

var otherParam = regexp.MustCompile(`\{[^}]*\}`)

// fillOriginal turns one of the original's patterns into a path of the dead test cluster.
func fillOriginal(p string) string {
	p = fillPattern(strings.ReplaceAll(p, "/actions/delete/{c}", "/actions/delete/c9"))
	return otherParam.ReplaceAllString(p, "x1")
}

// TestEveryOriginalRouteAnswers walks every route of replication-manager's router, with a
// valid token, on both listeners where it is served: none may meet the router's 404. Those
// not implemented answer 501 with a JSON body naming the route; the original's protected
// routes still want a token first.
func TestEveryOriginalRouteAnswers(t *testing.T) {
	px := &fakeProxies{}
	e := newDeadEnv(t, "", func(o *Options) { o.Proxies = px })
	tok := e.login("admin", apiPassword)
	impl := ImplementedOriginalRoutes(false)
	notImpl := 0
	for _, o := range OriginalRoutes() {
		path := fillOriginal(o.Pattern)
		r := e.do("GET", path, tok, nil)
		if r.code == http.StatusNotFound && r.body == "404 page not found\n" {
			t.Errorf("%s (%s): the router does not know it", o.Pattern, path)
			continue
		}
		if r.code == http.StatusNotImplemented && strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json") {
			var b NotImplementedBody
			if err := json.Unmarshal([]byte(r.body), &b); err != nil || b.Route != o.Pattern || !strings.Contains(b.Error, "not implemented") {
				t.Errorf("%s: 501 body %q", o.Pattern, r.body)
			}
			notImpl++
			if impl[o.Pattern] {
				t.Errorf("%s answers 501 but is listed as implemented", o.Pattern)
			}
			if o.Protected {
				if r := e.do("GET", path, "", nil); r.code != http.StatusUnauthorized {
					t.Errorf("%s without a token: %d, want 401", o.Pattern, r.code)
				}
			}
		}
		// Metrics stay on the TLS listener (docs/security.md).
		if !o.Protected && o.Pattern != "/api/prometheus" {
			if r := serve(e.srv.HTTPHandler(), "GET", path, "", nil); r.code == http.StatusNotFound && r.body == "404 page not found\n" {
				t.Errorf("%s: unknown to the plain listener", o.Pattern)
			}
		}
	}
	if notImpl == 0 || notImpl == len(OriginalRoutes()) {
		t.Fatalf("%d of %d original routes answer 501", notImpl, len(OriginalRoutes()))
	}
	// A path no version of replication-manager had is still a 404.
	if r := e.do("GET", "/api/clusters/c1/no-such-route", tok, nil); r.code != http.StatusNotFound {
		t.Errorf("unknown route: %d", r.code)
	}
}

// topology/proxies and the proxy actions go to the ProxyControl: the list, the action by
// proxy id, 500 "Proxy Not Found" for another id (as the original), the ACL of the actions.
func TestProxyRoutes(t *testing.T) {
	px := &fakeProxies{}
	e := newDeadEnv(t, "", func(o *Options) { o.Proxies = px })
	tok := e.login("admin", apiPassword)
	r := e.do("GET", "/api/clusters/c1/topology/proxies", tok, nil)
	var l []Proxy
	if r.code != 200 || json.Unmarshal([]byte(r.body), &l) != nil || len(l) != 1 || l[0].ID != "px1" || l[0].State != "ProxyRunning" {
		t.Fatalf("topology/proxies: %d %s", r.code, r.body)
	}
	for _, a := range []string{"start", "stop", "provision", "unprovision"} {
		if r := e.do("POST", "/api/clusters/c1/proxies/px1/actions/"+a, tok, nil); r.code != 200 {
			t.Errorf("%s: %d %q", a, r.code, r.body)
		}
	}
	if strings.Join(px.actions, ",") != "start,stop,provision,unprovision" {
		t.Errorf("actions run: %v", px.actions)
	}
	if r := e.do("POST", "/api/clusters/c1/proxies/px9/actions/start", tok, nil); r.code != 500 || r.body != "Proxy Not Found\n" {
		t.Errorf("unknown proxy: %d %q", r.code, r.body)
	}
	ext := e.login("ext", extPassword) // grants "cluster" only
	if r := e.do("POST", "/api/clusters/c1/proxies/px1/actions/stop", ext, nil); r.code != http.StatusForbidden {
		t.Errorf("stop without the proxy grant: %d", r.code)
	}
	if r := e.do("GET", "/api/clusters/c1/settings", tok, nil); r.code != 200 || !strings.Contains(r.body, `"db-servers-credential":"*:*"`) {
		t.Errorf("settings: %d %s", r.code, r.body)
	}
}

// Settings set or switched through the API are checked like the files, saved under
// monitoring-save-config, and read back by a reload (and a restart) below the files.
func TestSettingsSetSavedAndReloaded(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	if r := e.do("GET", "/api/clusters/c1/settings/actions/set/failover-limit/9", tok, nil); r.code != 200 {
		t.Fatalf("set: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/api/clusters/c1/settings/actions/switch/autorejoin", tok, nil); r.code != 200 {
		t.Fatalf("switch: %d %q", r.code, r.body)
	}
	m, _ := e.fleet.Get("c1")
	if m.Config.Settings.FailoverLimit != 9 || m.Config.Settings.Autorejoin {
		t.Fatalf("not applied: %d %v", m.Config.Settings.FailoverLimit, m.Config.Settings.Autorejoin)
	}
	saved, err := os.ReadFile(config.SavedPath(&m.Config.Settings, "c1"))
	if err != nil || !strings.Contains(string(saved), "failover-limit = 9\n") || !strings.Contains(string(saved), "autorejoin = false\n") {
		t.Fatalf("saved file: %v\n%s", err, saved)
	}
	for path, want := range map[string]int{
		"/api/clusters/c1/settings/actions/set/failover-limit/-3":            http.StatusBadRequest,
		"/api/clusters/c1/settings/actions/set/db-servers-credential/root:x": http.StatusBadRequest,
		"/api/clusters/c1/settings/actions/set/graphite-metrics/true":        http.StatusNotImplemented,
		"/api/clusters/c1/settings/actions/set/no-such-key/1":                http.StatusNotImplemented,
		"/api/clusters/c1/settings/actions/set/failover-limit/1%0a2":         http.StatusBadRequest,
	} {
		if r := e.do("GET", path, tok, nil); r.code != want || strings.Contains(r.body, "root:x") {
			t.Errorf("%s: %d %q, want %d", path, r.code, r.body, want)
		}
	}
	// A reload re-reads the files and the saved settings.
	if r := e.do("GET", "/api/clusters/c1/settings/actions/reload", tok, nil); r.code != 200 {
		t.Fatalf("reload: %d %q", r.code, r.body)
	}
	m, _ = e.fleet.Get("c1")
	if m.Config.Settings.FailoverLimit != 9 || m.Config.Settings.Autorejoin {
		t.Fatalf("reload lost the saved settings: %d %v", m.Config.Settings.FailoverLimit, m.Config.Settings.Autorejoin)
	}
}
