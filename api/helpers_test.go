package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/mariadb"
)

// Secrets configured in every test configuration: no response may ever contain them.
const (
	apiPassword      = "Api-S3cret-pw"
	extPassword      = "Ext-S3cret-pw"
	dbPassword       = "Db-S3cret-pw"
	replPassword     = "Repl-S3cret-pw"
	proxysqlPassword = "Proxysql-S3cret-pw"
)

func testLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// testFactory builds real monitors (MariaDB dialer) without routers.
func testFactory(events *eventlog.Log, log *logrus.Logger) cluster.Factory {
	return func(c *config.Cluster) (*cluster.Monitor, func(), error) {
		mc, err := cluster.MonitorConfigFrom(c)
		if err != nil {
			return nil, nil, err
		}
		cred, err := c.Settings.DBCredential()
		if err != nil {
			return nil, nil, err
		}
		opt := mariadb.Options{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second}
		return cluster.NewMonitor(mc, cluster.MariaDBDialer(cred.User, cred.Password, opt), events, log), nil, nil
	}
}

// env is an API over a fleet built from a configuration file.
type env struct {
	t       testing.TB
	dir     string
	cfgPath string
	cfg     *config.Config
	events  *eventlog.Log
	fleet   *cluster.Fleet
	srv     *Server
	log     *logrus.Logger
	opts    Options
}

type clusterDef struct {
	name  string
	hosts []string
	extra string // more TOML lines
}

// writeConfig writes a configuration with the test secrets and the given clusters.
func writeConfig(t testing.TB, dir string, defaultsExtra string, clusters ...clusterDef) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `[Default]
monitoring-datadir = %q
monitoring-ticker = 0.2
api-credentials = "admin:%s"
api-credentials-external = "ext:%s,foo:foo-pw,dba:dba-pw"
api-credentials-acl-allow = "admin:global cluster proxy db prov,dba:cluster proxy db,foo:,ext:cluster"
db-servers-credential = "root:%s"
replication-credential = "repl:%s"
proxysql-password = %q
db-servers-connect-timeout = 1
api-port = 0
api-bind = "127.0.0.1"
http-port = 0
http-bind-address = "127.0.0.1"
%s
`, filepath.Join(dir, "data"), apiPassword, extPassword, dbPassword, replPassword, proxysqlPassword, defaultsExtra)
	for _, c := range clusters {
		fmt.Fprintf(&b, "\n[%s]\ndb-servers-hosts = %q\n%s\n", c.name, strings.Join(c.hosts, ","), c.extra)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newEnv loads the configuration at path, starts a fleet with every cluster and builds
// the API (not listening: use handler() or start()).
func newEnv(t testing.TB, dir, path string, tweak func(*Options)) *env {
	t.Helper()
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := testLogger()
	events, err := eventlog.Open("", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fleet := cluster.NewFleet(ctx, testFactory(events, log), log)
	t.Cleanup(func() { cancel(); fleet.StopAll() })
	for _, c := range cfg.Clusters {
		if err := fleet.Start(c); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Fleet: fleet, Events: events, Defaults: cfg.Default, Log: log,
		LoadConfig: func() (*config.Config, error) { return config.Load(path, config.Options{}) }}
	if tweak != nil {
		tweak(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	return &env{t: t, dir: dir, cfgPath: path, cfg: cfg, events: events, fleet: fleet, srv: srv, log: log, opts: o}
}

// resp is a recorded answer.
type resp struct {
	code int
	body string
	hdr  http.Header
}

// do serves one request on the API handler in-process. target may hold raw or
// percent-encoded path bytes: it is parsed as a server parses a request line.
func (e *env) do(method, target, token string, body io.Reader, hdr ...string) resp {
	e.t.Helper()
	return serve(e.srv.APIHandler(), method, target, token, body, hdr...)
}

func serve(h http.Handler, method, target, token string, body io.Reader, hdr ...string) resp {
	req := httptest.NewRequest(method, target, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return resp{code: rec.Code, body: rec.Body.String(), hdr: rec.Header()}
}

// login returns a token for user (fails the test otherwise).
func (e *env) login(user, password string) string {
	e.t.Helper()
	r := e.do("POST", "/api/login", "", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	if r.code != 200 {
		e.t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || tok.Token == "" {
		e.t.Fatalf("login body %q: %v", r.body, err)
	}
	return tok.Token
}

// start opens the real listeners; they are shut down at the end of the test.
func (e *env) start() {
	e.t.Helper()
	if err := e.srv.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
	})
}

// httpsClient trusts any certificate (the test checks the pair itself elsewhere).
func httpsClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64,
	}}
}

func (e *env) apiURL(path string) string { return "https://" + e.srv.APIAddr().String() + path }

// call does one request over the network.
func call(t testing.TB, c *http.Client, method, u, token string, form url.Values) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, body: string(b), hdr: res.Header}
}

// waitFor polls cond for up to 30 s (generous: a loaded 2-core machine).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertNoSecret fails when a response carries a configured secret.
func assertNoSecret(t testing.TB, where string, r resp) {
	t.Helper()
	for _, s := range []string{apiPassword, extPassword, dbPassword, replPassword, proxysqlPassword, "foo-pw", "dba-pw"} {
		if strings.Contains(r.body, s) {
			t.Errorf("%s: response contains the secret %q:\n%s", where, s, r.body)
		}
		for k, vs := range r.hdr {
			for _, v := range vs {
				if strings.Contains(v, s) {
					t.Errorf("%s: header %s contains a secret", where, k)
				}
			}
		}
	}
}
