package api

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"replication-manager-pro/cluster"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Unreachable servers: nothing listens on these ports, so probes fail at once.
var deadHosts = []string{"127.0.0.1:1", "127.0.0.1:2", "[::1]:3"}

func newDeadEnv(t *testing.T, defaultsExtra string, tweak func(*Options)) *env {
	dir := t.TempDir()
	path := writeConfig(t, dir, "monitoring-wait-retry = 3\n"+defaultsExtra, clusterDef{name: "c1", hosts: deadHosts})
	return newEnv(t, dir, path, tweak)
}

var deadID = topology.ServerIDFor(ipv6.HostPort{Host: "127.0.0.1", Port: 1})

// fillPattern turns a route pattern into a concrete path.
func fillPattern(p string) string {
	if strings.Contains(p, "/actions/delete/") {
		// Route walks must not delete the cluster the next routes use.
		return strings.Replace(p, "{c}", "c9", 1)
	}
	return strings.NewReplacer("{c}", "c1", "{s}", deadID, "{host}", "127.0.0.1", "{port}", "1",
		"{topology}", "master-slave", "{setting}", "failover-mode", "{reference}", "SOFTINST-1", "{p}", "px1",
		"{method}", "logicalbackup", "{task}", "optimize").Replace(p)
}

func TestProtectedRoutesRefuseMissingOrBadTokens(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	other := newDeadEnv(t, "", nil) // another key: its tokens are forged for e
	forged := other.login("admin", apiPassword)

	expired, err := e.srv.auth.issue("admin", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "admin", "iss": jwtIssuer,
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	unknownUser, _ := e.srv.auth.issue("mallory", time.Hour)
	bad := map[string]string{"none": "", "garbage": "abc.def.ghi", "forged": forged, "expired": expired,
		"alg-none": none, "unknown-user": unknownUser}

	protected := 0
	for _, rt := range e.srv.routes() {
		if !rt.protected {
			continue
		}
		protected++
		for _, method := range []string{"GET", "POST"} {
			for name, tok := range bad {
				r := e.do(method, fillPattern(rt.pattern), tok, nil)
				if r.code != http.StatusUnauthorized {
					t.Errorf("%s %s with %s token: %d %q, want 401", method, rt.pattern, name, r.code, r.body)
				}
			}
		}
	}
	if protected < 25 {
		t.Fatalf("only %d protected routes walked", protected)
	}
	// A token of the right user and key works (sanity of the walk above).
	if r := e.do("GET", "/api/clusters", e.login("admin", apiPassword), nil); r.code != 200 {
		t.Fatalf("valid token: %d %s", r.code, r.body)
	}
}

func TestPlainListenerServesProtectedRoutesOnlyWithoutHTTPSBind(t *testing.T) {
	secure := newDeadEnv(t, "api-https-bind = true", nil)
	tok := secure.login("admin", apiPassword)
	for _, rt := range secure.srv.routes() {
		r := serve(secure.srv.HTTPHandler(), "GET", fillPattern(rt.pattern), tok, nil)
		if rt.plain {
			if r.code == http.StatusNotFound && r.body == "404 page not found\n" {
				t.Errorf("plain route %s not served on the plain listener", rt.pattern)
			}
			continue
		}
		if r.code != http.StatusNotFound {
			t.Errorf("api-https-bind=true: %s on the plain listener: %d, want 404", rt.pattern, r.code)
		}
	}
	// The UI placeholder is there.
	if r := serve(secure.srv.HTTPHandler(), "GET", "/", "", nil); r.code != 200 || !strings.Contains(r.body, "replication-manager-pro") {
		t.Errorf("UI placeholder: %d %q", r.code, r.body)
	}

	open := newDeadEnv(t, "api-https-bind = false", nil)
	for _, rt := range open.srv.routes() {
		if !rt.protected {
			continue
		}
		if r := serve(open.srv.HTTPHandler(), "GET", fillPattern(rt.pattern), "", nil); r.code != http.StatusUnauthorized {
			t.Errorf("api-https-bind=false: %s on the plain listener without token: %d, want 401", rt.pattern, r.code)
		}
	}
	open.srv.MountUI(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("my ui")) }))
	if r := serve(open.srv.HTTPHandler(), "GET", "/index.html", "", nil); r.body != "my ui" {
		t.Errorf("mounted UI not served: %q", r.body)
	}
}

func TestRouteWalkNeverReturnsSecrets(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	// The token itself carries no password.
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "token payload", resp{body: string(payload)})
	if !strings.Contains(string(payload), `"sub":"admin"`) {
		t.Errorf("token payload lacks the user: %s", payload)
	}

	waitFor(t, "a first snapshot", func() bool { m, _ := e.fleet.Get("c1"); return m.Monitor.Snapshot() != nil })
	paths := []string{"/metrics", "/api/prometheus", "/", "/nope"}
	for _, rt := range e.srv.routes() {
		paths = append(paths, fillPattern(rt.pattern))
	}
	for _, p := range paths {
		for _, method := range []string{"GET", "POST"} {
			r := e.do(method, p, tok, nil)
			assertNoSecret(t, method+" "+p, r)
			if r.body == "Internal Server Error\n" {
				t.Errorf("%s %s panicked", method, p)
			}
		}
	}
	// The cluster object masks every secret key with *:*, even empty ones.
	r := e.do("GET", "/api/clusters/c1", tok, nil)
	var c struct {
		Config   map[string]any `json:"config"`
		APIUsers map[string]struct {
			User   string          `json:"user"`
			Grants map[string]bool `json:"grants"`
		} `json:"apiUsers"`
	}
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	for _, k := range []string{"apiCredentials", "apiCredentialsExternal", "dbServersCredential", "replicationCredential", "proxysqlPassword", "backupResticPassword"} {
		if c.Config[k] != "*:*" {
			t.Errorf("config.%s = %v, want *:*", k, c.Config[k])
		}
	}
	if c.Config["dbServersHosts"] != strings.Join(deadHosts, ",") {
		t.Errorf("config.dbServersHosts = %v", c.Config["dbServersHosts"])
	}
	if !c.APIUsers["admin"].Grants[GrantClusterFailover] || c.APIUsers["foo"].Grants[GrantClusterFailover] {
		t.Errorf("apiUsers grants: %+v", c.APIUsers)
	}
}

func TestLoginAnswers(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	for _, body := range []string{`{"username": "admin", "password": `, `not json`, ``, `{"username": 5}`} {
		r := e.do("POST", "/api/login", "", strings.NewReader(body))
		if r.code != http.StatusBadRequest || !strings.HasPrefix(r.body, "Error in request") {
			t.Errorf("body %q: %d %q, want 400 with a reason", body, r.code, r.body)
		}
	}
	r := e.do("POST", "/api/login", "", strings.NewReader(`{"username":"admin","password":"wrong"}`))
	if r.code != http.StatusForbidden || r.body != "Invalid credentials\n" {
		t.Errorf("wrong password: %d %q", r.code, r.body)
	}
	r = e.do("POST", "/api/login", "", strings.NewReader(`{"username":"admin","password":"`+apiPassword+`"}`), "Accept", "text/html,*/*")
	if r.code != 200 || strings.Count(r.body, ".") != 2 || strings.Contains(r.body, "{") {
		t.Errorf("Accept text/html: want the raw token, got %d %q", r.code, r.body)
	}
	// api-credentials-external users log in too.
	e.login("ext", extPassword)
	// No CORS header without api-cors-allow-origins (TestCORSOnlyForConfiguredOrigins);
	// preflights are answered, never reach a handler.
	r = e.do("OPTIONS", "/api/clusters", "", nil, "Origin", "https://evil.example")
	if r.code != http.StatusNoContent || r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight: %d %v", r.code, r.hdr)
	}
	for _, m := range []string{"GET", "POST"} {
		if r := e.do(m, "/api/status", "", nil); r.code != 200 || strings.TrimSpace(r.body) != `{"alive":"running"}` {
			t.Errorf("%s /api/status: %d %q", m, r.code, r.body)
		}
	}
}

func TestStatusStartingUntilReady(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	e.srv.SetReady(false)
	if r := e.do("GET", "/api/status", "", nil); strings.TrimSpace(r.body) != `{"alive":"starting"}` {
		t.Errorf("before ready: %q", r.body)
	}
}

// clock is a settable time source for the login guard and tokens.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLoginBruteForceGuard(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newDeadEnv(t, "", func(o *Options) { o.Now = clk.now })
	try := func(pw string) int {
		return e.do("POST", "/api/login", "", strings.NewReader(`{"username":"admin","password":"`+pw+`"}`)).code
	}
	// Two failures, a success resets the counter.
	try("x")
	try("x")
	if c := try(apiPassword); c != 200 {
		t.Fatalf("success after 2 failures: %d", c)
	}
	for i := 0; i < 3; i++ {
		if c := try("x"); c != http.StatusForbidden {
			t.Fatalf("failure %d: %d, want 403", i+1, c)
		}
	}
	if c := try(apiPassword); c != http.StatusTooManyRequests {
		t.Fatalf("4th attempt with the right password: %d, want 429", c)
	}
	// Another user is not locked out.
	if r := e.do("POST", "/api/login", "", strings.NewReader(`{"username":"ext","password":"`+extPassword+`"}`)); r.code != 200 {
		t.Fatalf("other user: %d", r.code)
	}
	clk.add(loginWindow + time.Second)
	if c := try(apiPassword); c != 200 {
		t.Fatalf("after the window: %d, want 200", c)
	}
}

func TestTokenSurvivesRestartWithSameKey(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	st, err := os.Stat(JWTKeyPath(e.cfg.Default.MonitoringDatadir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	// A new API process on the same monitoring-datadir.
	again, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := serve(again.APIHandler(), "GET", "/api/clusters", tok, nil); r.code != 200 {
		t.Fatalf("token after restart: %d %s", r.code, r.body)
	}
	// Deleting the key revokes every token.
	os.Remove(JWTKeyPath(e.cfg.Default.MonitoringDatadir))
	fresh, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := serve(fresh.APIHandler(), "GET", "/api/clusters", tok, nil); r.code != 401 {
		t.Fatalf("token after key rotation: %d", r.code)
	}
}

func TestSelfSignedPairIsKeptAndReused(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	e.start()
	fp := func(addr string) []byte {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	first := fp(e.srv.APIAddr().String())
	certPath, keyPath := GeneratedCertPaths(e.cfg.Default.MonitoringDatadir)
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key %s: %v %v", keyPath, st, err)
	}
	if _, err := os.Stat(certPath); err != nil {
		t.Fatal(err)
	}
	again, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	defer again.Shutdown(t.Context())
	if second := fp(again.APIAddr().String()); string(second) != string(first) {
		t.Fatal("a restarted API generated a new certificate instead of reusing the kept pair")
	}
	// Plain listener: plain HTTP.
	r := call(t, &http.Client{Timeout: 10 * time.Second}, "GET", "http://"+e.srv.HTTPAddr().String()+"/api/status", "", nil)
	if r.code != 200 {
		t.Fatalf("plain listener: %d", r.code)
	}
}

func TestACLGrants(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	foo := e.login("foo", "foo-pw")
	if r := e.do("GET", "/api/clusters", foo, nil); r.code != 200 {
		t.Errorf("foo lists clusters: %d", r.code)
	}
	if r := e.do("GET", "/api/clusters/c1/topology/alerts", foo, nil); r.code != 200 {
		t.Errorf("foo reads alerts: %d", r.code)
	}
	for _, p := range []string{"/api/clusters/c1/actions/failover", "/api/clusters/c1/settings/actions/switch/failover-mode",
		"/api/clusters/actions/add/c9", "/api/clusters/c1/servers/" + deadID + "/actions/set-maintenance"} {
		if r := e.do("POST", p, foo, nil); r.code != http.StatusForbidden || r.body != "No valid ACL\n" {
			t.Errorf("foo %s: %d %q, want 403 No valid ACL", p, r.code, r.body)
		}
	}
	dba := e.login("dba", "dba-pw")
	if r := e.do("POST", "/api/clusters/c1/actions/failover", dba, nil); r.code == http.StatusForbidden {
		t.Errorf("dba (cluster grants) refused failover by ACL: %s", r.body)
	}
	ext := e.login("ext", extPassword)
	if r := e.do("POST", "/api/clusters/c1/servers/"+deadID+"/actions/set-maintenance", ext, nil); r.code != http.StatusForbidden {
		t.Errorf("ext (cluster only) set db maintenance: %d, want 403", r.code)
	}
}

func TestUnknownClusterAndServerCodes(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/api/clusters/nope", 404, "Cluster Not Found\n"},
		{"/api/clusters/nope/topology/servers", 404, "Cluster Not Found\n"},
		{"/api/clusters/nope/actions/failover", 404, "Cluster Not Found\n"},
		{"/api/clusters/nope/status", 400, "No cluster found:nope\n"},
		{"/api/clusters/nope/servers/127.0.0.1/1/is-master", 500, "503 -No cluster!"},
		{"/api/clusters/c1/servers/db42/actions/maintenance", 404, "Server Not Found\n"},
		{"/api/clusters/c1/servers/10.9.9.9/3306/is-master", 500, "503 -Node not Found!"},
		{"/api/clusters/c1/servers/10.9.9.9/is-master", 200, "503 -Not a Valid Master!"},
		{"/api/clusters/c1/servers/" + deadID + "/actions/start", 501, ""},
		{"/api/clusters/c1/actions/replication/bootstrap/multi-master", 501, ""},
		{"/api/clusters/c1/topology/master", 503, "No master\n"},
	}
	for _, c := range cases {
		r := e.do("GET", c.path, tok, nil)
		if r.code != c.code || (c.body != "" && r.body != c.body) {
			t.Errorf("%s: %d %q, want %d %q", c.path, r.code, r.body, c.code, c.body)
		}
	}
	// Dead cluster: not failable.
	if r := e.do("GET", "/api/clusters/c1/status", "", nil); strings.TrimSpace(r.body) != `{"alive":"errors"}` {
		t.Errorf("dead cluster status: %q", r.body)
	}
	// waitdatabases gives up after monitoring-wait-retry × ticker.
	if r := e.do("GET", "/api/clusters/c1/actions/waitdatabases", tok, nil); r.code != http.StatusServiceUnavailable {
		t.Errorf("waitdatabases on dead servers: %d %q", r.code, r.body)
	}
	// Switchover with a prefmaster outside db-servers-hosts.
	r := e.do("POST", "/api/clusters/c1/actions/switchover", tok, strings.NewReader("prefmaster=10.0.0.1:3306"),
		"Content-Type", "application/x-www-form-urlencoded")
	if r.code != http.StatusBadRequest {
		t.Errorf("foreign prefmaster: %d %q", r.code, r.body)
	}
}

func TestSwitchSettingBothSpellings(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	inject := func() bool { m, _ := e.fleet.Get("c1"); return m.Config.Settings.TestInjectTraffic }
	// As at the version SlapOS pins: the misspelt name SlapOS sends answers 200 and changes
	// nothing; database-heartbeat toggles test-inject-traffic.
	for _, step := range []struct {
		name string
		want bool
	}{{"database-hearbeat", false}, {"database-heartbeat", true}, {"DATABASE-HEARBEAT", true}, {"Database-Heartbeat", false}} {
		if r := e.do("GET", "/api/clusters/c1/settings/actions/switch/"+step.name, tok, nil); r.code != 200 {
			t.Fatalf("switch %s: %d %q", step.name, r.code, r.body)
		}
		if inject() != step.want {
			t.Fatalf("after switch %s test-inject-traffic = %v", step.name, inject())
		}
	}
	if r := e.do("GET", "/api/clusters/c1/settings/actions/switch/failover-mode", tok, nil); r.code != 200 {
		t.Fatalf("failover-mode: %d", r.code)
	}
	if m, _ := e.fleet.Get("c1"); m.Config.Settings.FailoverMode != "automatic" {
		t.Fatalf("failover-mode = %s", m.Config.Settings.FailoverMode)
	}
	for _, name := range []string{"no-such-setting", "failover-limit", "db-servers-hosts"} {
		if r := e.do("GET", "/api/clusters/c1/settings/actions/switch/"+name, tok, nil); r.code != http.StatusNotImplemented || r.body != "Setting Not Found\n" {
			t.Errorf("switch %s: %d %q, want 501 Setting Not Found", name, r.code, r.body)
		}
	}
}

func TestAddClusterThenReloadFromFile(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	if r := e.do("GET", "/api/clusters/c2", tok, nil); r.code != 404 {
		t.Fatalf("c2 before add: %d", r.code)
	}
	if r := e.do("GET", "/api/clusters/actions/add/c2", tok, nil); r.code != 200 {
		t.Fatalf("add: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/api/clusters/actions/add/c2", tok, nil); r.code != http.StatusConflict {
		t.Fatalf("add twice: %d", r.code)
	}
	if r := e.do("GET", "/api/clusters/actions/add/..%2Fetc", tok, nil); r.code != http.StatusBadRequest {
		t.Fatalf("bad name: %d", r.code)
	}
	for _, reserved := range []string{"Default", "default", "saved-c1"} {
		if r := e.do("GET", "/api/clusters/actions/add/"+reserved, tok, nil); r.code != http.StatusBadRequest || !strings.Contains(r.body, "reserved") {
			t.Fatalf("reserved name %s: %d %s", reserved, r.code, r.body)
		}
	}
	var list []Cluster
	r := e.do("GET", "/api/clusters", tok, nil)
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list) != 2 || list[0].Name != "c1" || list[1].Name != "c2" {
		t.Fatalf("clusters after add: %v %s", err, r.body)
	}
	// SlapOS then writes the cluster's section and asks for a reload.
	writeConfig(t, e.dir, "monitoring-wait-retry = 3\n", clusterDef{name: "c1", hosts: deadHosts},
		clusterDef{name: "c2", hosts: []string{"127.0.0.1:4", "127.0.0.1:5"}, extra: `failover-mode = "automatic"`})
	if r := e.do("GET", "/api/clusters/c2/settings/actions/reload", tok, nil); r.code != 200 {
		t.Fatalf("reload: %d %q", r.code, r.body)
	}
	m, _ := e.fleet.Get("c2")
	if m.Config.Settings.DBServersHosts != "127.0.0.1:4,127.0.0.1:5" || m.Config.Settings.FailoverMode != "automatic" {
		t.Fatalf("c2 not reloaded from its section: %s", m.Config.Settings.DBServersHosts)
	}
	var c Cluster
	json.Unmarshal([]byte(e.do("GET", "/api/clusters/c2", tok, nil).body), &c)
	if len(c.DBServers) != 2 || c.DBServers[0] != topology.ServerIDFor(ipv6.HostPort{Host: "127.0.0.1", Port: 4}) {
		t.Fatalf("dbServers after reload: %v", c.DBServers)
	}
}

func TestMaintenanceAndPreferedActionsByServerID(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	m, _ := e.fleet.Get("c1")
	addr := ipv6.HostPort{Host: "127.0.0.1", Port: 1}
	base := "/api/clusters/c1/servers/" + deadID + "/actions/"
	if r := e.do("POST", base+"maintenance", tok, nil); r.code != 200 || !m.Monitor.InMaintenance(addr) {
		t.Fatalf("maintenance toggle on: %d %v", r.code, m.Monitor.InMaintenance(addr))
	}
	// Settings changes rebuild the monitor and keep the maintenance flag.
	if r := e.do("POST", base+"set-prefered", tok, nil); r.code != 200 {
		t.Fatalf("set-prefered: %d %q", r.code, r.body)
	}
	m, _ = e.fleet.Get("c1")
	if m.Config.Settings.DBServersPreferedMaster != "127.0.0.1:1" || !m.Monitor.InMaintenance(addr) {
		t.Fatalf("after set-prefered: %q maintenance=%v", m.Config.Settings.DBServersPreferedMaster, m.Monitor.InMaintenance(addr))
	}
	e.do("POST", base+"set-ignored", tok, nil)
	m, _ = e.fleet.Get("c1")
	if m.Config.Settings.DBServersPreferedMaster != "" || m.Config.Settings.DBServersIgnoredHosts != "127.0.0.1:1" {
		t.Fatalf("after set-ignored: %q %q", m.Config.Settings.DBServersPreferedMaster, m.Config.Settings.DBServersIgnoredHosts)
	}
	e.do("POST", base+"set-unrated", tok, nil)
	m, _ = e.fleet.Get("c1")
	if m.Config.Settings.DBServersIgnoredHosts != "" {
		t.Fatalf("after set-unrated: %q", m.Config.Settings.DBServersIgnoredHosts)
	}
	if r := e.do("POST", base+"del-maintenance", tok, nil); r.code != 200 || m.Monitor.InMaintenance(addr) {
		t.Fatalf("del-maintenance: %d", r.code)
	}
}

// fakeServices records start/stop calls.
type fakeServices struct{ calls []string }

func (f *fakeServices) StartDatabase(_ context.Context, c string, a ipv6.HostPort) error {
	f.calls = append(f.calls, "start "+c+" "+a.String())
	return nil
}

func (f *fakeServices) StopDatabase(_ context.Context, c string, a ipv6.HostPort) error {
	f.calls = append(f.calls, "stop "+c+" "+a.String())
	return errors.New("stop failed")
}

func TestHooksAndPanicRecovery(t *testing.T) {
	svc := &fakeServices{}
	e := newDeadEnv(t, `prov-orchestrator = "slapos"`, func(o *Options) {
		o.Services = svc
		o.Provisioned = func(m *cluster.Member) bool {
			if m.Name == "c1" {
				panic("boom")
			}
			return false
		}
	})
	tok := e.login("admin", apiPassword)
	if r := e.do("GET", "/api/clusters", tok, nil); r.code != 500 {
		t.Fatalf("panicking hook: %d, want 500", r.code)
	}
	// The server still answers.
	if r := e.do("GET", "/api/status", "", nil); r.code != 200 {
		t.Fatalf("after a panic: %d", r.code)
	}
	base := "/api/clusters/c1/servers/" + deadID + "/actions/"
	if r := e.do("POST", base+"start", tok, nil); r.code != 200 {
		t.Fatalf("start: %d", r.code)
	}
	if r := e.do("POST", base+"stop", tok, nil); r.code != 500 {
		t.Fatalf("stop failing: %d", r.code)
	}
	if strings.Join(svc.calls, ";") != "start c1 127.0.0.1:1;stop c1 127.0.0.1:1" {
		t.Fatalf("calls %v", svc.calls)
	}
}

func TestIPv6Binds(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	d := e.cfg.Default
	d.APIBind, d.HTTPBindAddress = "::1", "[::1]"
	e.opts.Defaults = d
	srv, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	for _, u := range []string{"https://" + srv.APIAddr().String() + "/api/status", "http://" + srv.HTTPAddr().String() + "/api/status"} {
		if !strings.HasPrefix(u[strings.Index(u, "//")+2:], "[::1]:") {
			t.Fatalf("not bound on ::1: %s", u)
		}
		if r := call(t, httpsClient(), "GET", u, "", nil); r.code != 200 {
			t.Fatalf("%s: %d", u, r.code)
		}
	}
}
