package slapos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

type fakeFleet struct {
	c    *config.Cluster
	o    *Orchestrator
	snap *topology.Snapshot
}

func (f *fakeFleet) Cluster(name string) (Cluster, bool) {
	if !strings.EqualFold(name, f.c.Name) {
		return Cluster{}, false
	}
	return Cluster{Orchestrator: f.o, Config: f.c, Snapshot: f.snap}, true
}

// fakeBundle stands in for package configurator: a tarball naming the node and the job
// runner's login (the admin "repman" unless the caller is anonymous).
func fakeBundle(_ context.Context, c *config.Cluster, t orchestrator.Target, job *JobLogin) ([]byte, error) {
	login := "repman:admin-secret"
	if job != nil {
		login = job.User + ":" + job.Password
	}
	files := map[string]string{"etc/mysql/custom/node.cnf": "# " + c.Name + " " + t.Addr.String() + "\n", "etc/mysql/dbjob.cnf": login + "\n"}
	if t.Kind == orchestrator.KindProxySQL {
		files = map[string]string{"etc/proxysql/proxysql.cnf": "admin_variables={}\n", "etc/proxysql.cnf": "admin_variables={}\n"}
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func newServer(t *testing.T) (*httptest.Server, *fakeFleet, *Handlers) {
	t.Helper()
	c := testCluster(t)
	f := &fakeFleet{c: c, o: newOrch(t, c), snap: snapshotOf(c, topology.StateMaster, topology.StateSlave, topology.StateFailed)}
	h := &Handlers{Clusters: f, Bundles: BundleFunc(fakeBundle), Log: quiet()}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv, f, h
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// get is an anonymous GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return getAuth(t, url, "")
}

// getAuth GETs url with "Authorization: <auth>" (none when empty).
func getAuth(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	return doAuth(t, http.MethodGet, url, auth, "")
}

// doAuth sends method with body to url with "Authorization: <auth>" (none when empty).
func doAuth(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// credFor returns the credential a partition would send for path (after /api/clusters/):
// its node's, the first database's for a cluster route, a made-up one for a server
// that cannot be parsed.
func credFor(t *testing.T, f *fakeFleet, path string) string {
	t.Helper()
	key, err := LoadOrCreatePartitionKey(WorkingDir(&f.c.Settings))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(path, "/")
	if len(parts) >= 4 && parts[1] == "servers" {
		addr, err := ParseServer(parts[2], parts[3])
		if err != nil {
			return strings.Repeat("ab", 32)
		}
		return PartitionCredential(key, parts[0], addr)
	}
	return PartitionCredential(key, parts[0], f.o.Placement().Databases[0].Addr)
}

// getAs GETs base+path with the credential of its node.
func getAs(t *testing.T, f *fakeFleet, base, path string) (int, string) {
	t.Helper()
	return getAuth(t, base+path, "Bearer "+credFor(t, f, path))
}

// TestNeedCodes runs the answers of every route twice: as partitions holding their
// credentials, and anonymously with slapos-legacy-anonymous-routes (SlapOS' unchanged
// scripts). Only routes naming no node differ: 401 with a credential, 500 anonymously.
func TestNeedCodes(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "credential"
		if legacy {
			name = "legacy-anonymous"
		}
		t.Run(name, func(t *testing.T) { testNeedCodes(t, legacy) })
	}
}

func testNeedCodes(t *testing.T, legacy bool) {
	srv, f, _ := newServer(t)
	f.c.Settings.SlapOSLegacyAnonymousRoutes = legacy
	o := f.o
	ctx := context.Background()
	p := o.Placement()
	master, failed, proxy := p.Databases[0].Addr, p.Databases[2].Addr, p.Proxies[0].Addr
	set := func(a ipv6.HostPort, ck Cookie) func() {
		return func() {
			n, _ := o.Node(a)
			if err := n.Set(ck); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := srv.URL + "/api/clusters/"
	m := "cluster1/servers/[2001:db8::10]/2099/"
	fl := "cluster1/servers/[2001:db8::12]/2299/"
	px := "cluster1/servers/10.0.74.165/6032/"
	for _, tc := range []struct {
		name  string
		setup func()
		path  string
		code  int
		body  string
	}{
		{"unknown cluster", nil, "nope/servers/[2001:db8::10]/2099/need-start", 500, "500 -No cluster!"},
		{"unknown server", nil, "cluster1/servers/[2001:db8::99]/2099/need-start", 500, "500 -No valid server!"},
		{"bad port", nil, "cluster1/servers/[2001:db8::10]/x/need-start", 500, "500 -No valid server!"},
		{"proxy by client port", nil, "cluster1/servers/10.0.74.165/7032/need-start", 500, "500 -No valid server!"},
		{"no start", nil, m + "need-start", 500, "500 -No start needed!"},
		{"start", func() { _ = o.StartDatabase(ctx, master) }, m + "need-start", 200, "200 -Need start!"},
		{"start consumed", nil, m + "need-start", 500, "500 -No start needed!"},
		{"start of a failed db", func() { _ = o.StartDatabase(ctx, failed) }, fl + "need-start", 200, "200 -Need start!"},
		{"case-insensitive cluster, encoded host", set(master, CookieWaitStart), "CLUSTER1/servers/%5B2001:DB8::10%5D/2099/need-start", 200, "200 -Need start!"},
		{"bare ipv6 host", set(master, CookieWaitStart), "cluster1/servers/2001:db8::10/2099/need-start", 200, "200 -Need start!"},
		{"no stop", nil, m + "need-stop", 500, "500 -No stop needed!"},
		{"stop of a failed db", set(failed, CookieWaitStop), fl + "need-stop", 500, "500 -No stop needed!"},
		{"stop", set(master, CookieWaitStop), m + "need-stop", 200, "200 -Need stop!"},
		{"stop consumed", nil, m + "need-stop", 500, "500 -No stop needed!"},
		{"no restart", nil, m + "need-restart", 503, "503 -No restart needed!"},
		{"restart", set(master, CookieRestart), m + "need-restart", 200, "200 -Need restart!"},
		{"restart kept", nil, m + "need-restart", 200, "200 -Need restart!"},
		{"restart of a failed db", set(failed, CookieRestart), fl + "need-restart", 503, "503 -Not a Valid Server!"},
		{"no reprov", nil, m + "need-reprov", 503, "503 -No reprov needed!"},
		{"reprov", set(master, CookieReprov), m + "need-reprov", 200, "200 -Need reprov!"},
		{"prov", func() { _ = o.ProvisionDatabase(ctx, master) }, m + "need-prov", 200, "200 -Need prov!"},
		{"no unprov", nil, m + "need-unprov", 503, "503 -No unprov needed!"},
		{"unprov", func() { _ = o.UnprovisionDatabase(ctx, master) }, m + "need-unprov", 200, "200 -Need unprov!"},
		{"no config change", nil, m + "need-config-change", 503, "503 -No config change needed!"},
		{"config change", set(failed, CookieConfig), fl + "need-config-change", 200, "200 -Need config change!"},
		{"config change consumed", nil, fl + "need-config-change", 503, "503 -No config change needed!"},
		{"proxy no start", nil, px + "need-start", 500, "500 -No start needed!"},
		{"proxy start", func() { _ = o.StartProxy(ctx, proxy) }, px + "need-start", 200, "200 -Need start!"},
		{"proxy stop", func() { _ = o.StopProxy(ctx, proxy) }, px + "need-stop", 200, "200 -Need stop!"},
		{"proxy config change deletes cookie_config", set(proxy, CookieConfig), px + "need-config-change", 200, "200 -Need config change!"},
		{"proxy config change consumed", nil, px + "need-config-change", 503, "503 -No config change needed!"},
		{"no rolling restart", nil, "cluster1/need-rolling-restart", 503, "503 -No rolling restart needed!"},
		{"rolling restart", func() {
			for _, db := range p.Databases {
				set(db.Addr, CookieRestart)()
			}
		}, "cluster1/need-rolling-restart", 200, "200 -Need rolling restart!"},
		{"no rolling reprov", nil, "cluster1/need-rolling-reprov", 503, "503 -No rolling reprov needed!"},
		{"rolling of unknown cluster", nil, "nope/need-rolling-reprov", 500, "500 -No cluster!"},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		var code int
		var body string
		if legacy {
			code, body = get(t, base+tc.path)
		} else {
			code, body = getAs(t, f, base, tc.path)
			if tc.body == bodyNoServer { // names no node: no credential can match
				tc.code, tc.body = 401, bodyBadCredential
			}
		}
		if code != tc.code || body != tc.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", tc.name, tc.path, code, body, tc.code, tc.body)
		}
	}
}

func untar(t *testing.T, b []byte, dir string) []string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	return names
}

// TestPartitionAgentFlow does what SlapOS' cron scripts do, over HTTP: poll need-start with
// the bracketed IPv6 host, start once when told, download the bundle and unpack it.
func TestPartitionAgentFlow(t *testing.T) {
	srv, f, _ := newServer(t)
	o := f.o
	url := srv.URL + "/api/clusters/cluster1/servers/[2001:db8::11]/2199/"
	auth := "Bearer " + credFor(t, f, "cluster1/servers/[2001:db8::11]/2199/")
	get := func(t *testing.T, url string) (int, string) { return getAuth(t, url, auth) }
	if code, _ := get(t, url+"need-start"); code != 500 {
		t.Fatalf("need-start before any request: %d", code)
	}
	if err := o.StartDatabase(context.Background(), o.Placement().Databases[1].Addr); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, url+"need-start"); code != 200 || body != "200 -Need start!" {
		t.Fatalf("need-start after Start: %d %q", code, body)
	}
	if code, _ := get(t, url+"need-start"); code != 500 {
		t.Fatalf("need-start again: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"config", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("config: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dir := t.TempDir()
	names := untar(t, b, dir)
	got, err := os.ReadFile(filepath.Join(dir, "etc/mysql/custom/node.cnf"))
	if err != nil || string(got) != "# cluster1 [2001:db8::11]:2199\n" {
		t.Fatalf("bundle %v: %q %v", names, got, err)
	}
}

// TestPartitionAgentFlowCurl runs the same steps with bash and curl, as the SlapOS scripts
// (curl -o /dev/null -w "%{http_code}"); skipped when one is missing (failed under CI or
// RMP_REQUIRE_REAL=1).
func TestPartitionAgentFlowCurl(t *testing.T) {
	for _, b := range []string{"bash", "curl", "tar"} {
		realtest.LookPath(t, b, b) // each from the Debian package of the same name
	}
	srv, f, _ := newServer(t)
	o := f.o
	script := `set -eu
code() { curl -g --silent -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $CRED" "$1"; }
U="$BASE/api/clusters/cluster1/servers/[2001:db8::10]/2099"
echo "first=$(code "$U/need-start")"
"$START"
echo "second=$(code "$U/need-start")"
echo "third=$(code "$U/need-start")"
echo "anonymous=$(curl -g --silent -o /dev/null -w "%{http_code}" "$U/need-start")"
cd "$DIR" && curl -g --silent --fail -H "Authorization: Bearer $CRED" -o bundle.tar.gz "$U/config" && tar -xzf bundle.tar.gz && cat etc/mysql/custom/node.cnf
`
	// The start request comes from the orchestrator, between two polls: a tiny HTTP hook.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := o.StartDatabase(context.Background(), o.Placement().Databases[0].Addr); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}))
	defer hook.Close()
	startScript := filepath.Join(t.TempDir(), "start.sh")
	if err := os.WriteFile(startScript, []byte("#!/bin/bash\ncurl --silent --fail "+hook.URL+" >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "BASE="+srv.URL, "START="+startScript, "DIR="+t.TempDir(),
		"CRED="+credFor(t, f, "cluster1/servers/[2001:db8::10]/2099/"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	want := "first=500\nsecond=200\nthird=500\nanonymous=401\n# cluster1 [2001:db8::10]:2099\n"
	if string(out) != want {
		t.Fatalf("script output:\n%s\nwant:\n%s", out, want)
	}
}

func TestConfigEndpoint(t *testing.T) {
	srv, f, h := newServer(t)
	base := srv.URL + "/api/clusters/"
	px := "cluster1/servers/10.0.74.165/6032/config"
	db := "cluster1/servers/[2001:db8::10]/2099/config"
	code, body := getAs(t, f, base, px)
	if code != 200 {
		t.Fatalf("proxy config: %d", code)
	}
	names := untar(t, []byte(body), t.TempDir())
	if len(names) != 2 {
		t.Fatalf("proxy bundle entries %v", names)
	}
	if code, body := getAs(t, f, base, "cluster1/servers/10.0.74.166/6032/config"); code != 401 || body != bodyBadCredential {
		t.Fatalf("unknown server: %d %q", code, body)
	}
	// A partition's own credential: the full bundle, with the admin login.
	code, body = getAs(t, f, base, db)
	dir := t.TempDir()
	untar(t, []byte(body), dir)
	if job, _ := os.ReadFile(filepath.Join(dir, "etc/mysql/dbjob.cnf")); code != 200 || string(job) != "repman:admin-secret\n" {
		t.Fatalf("database config with its credential: %d %q", code, job)
	}
	// Another node's credential, the same node in another cluster, garbage: 401.
	key, _ := LoadOrCreatePartitionKey(WorkingDir(&f.c.Settings))
	other := f.o.Placement().Databases[1].Addr
	for _, auth := range []string{
		"Bearer " + PartitionCredential(key, "cluster1", other),
		"Bearer " + PartitionCredential(key, "cluster2", f.o.Placement().Databases[0].Addr),
		"Bearer " + PartitionCredential([]byte("another key of thirty-two bytes!"), "cluster1", f.o.Placement().Databases[0].Addr),
		"Bearer " + strings.Repeat("0", 64),
		"Basic " + credFor(t, f, db),
		credFor(t, f, db),
	} {
		if code, body := getAuth(t, base+db, auth); code != 401 || strings.Contains(body, "\x1f") {
			t.Errorf("config with %q: %d", auth[:12], code)
		}
	}
	// Anonymous: 401 naming the missing credential.
	if code, body := get(t, base+db); code != 401 || body != bodyNeedCredential {
		t.Fatalf("anonymous config: %d %q", code, body)
	}
	// A user's token: only what Authorize accepts, only for config.
	h.Authorize = func(r *http.Request, c *config.Cluster) bool {
		return c == f.c && r.Header.Get("Authorization") == "Bearer user.with.grant"
	}
	if code, _ := getAuth(t, base+db, "Bearer user.with.grant"); code != 200 {
		t.Fatalf("config with an accepted user token: %d", code)
	}
	for _, tc := range []struct{ path, auth string }{
		{db, "Bearer user.without.grant"},
		{"cluster1/servers/[2001:db8::10]/2099/need-start", "Bearer user.with.grant"},
		{"cluster1/need-rolling-restart", "Bearer user.with.grant"},
	} {
		if code, body := getAuth(t, base+tc.path, tc.auth); code != 401 || body != bodyUserNotAllowed {
			t.Errorf("%s with %s: %d %q", tc.path, tc.auth, code, body)
		}
	}

	// Legacy anonymous routes: a database bundle with the job account instead of the admin
	// login, no ProxySQL bundle, nothing under api-credentials-secure-config.
	f.c.Settings.SlapOSLegacyAnonymousRoutes = true
	code, body = get(t, base+db)
	dir = t.TempDir()
	untar(t, []byte(body), dir)
	job, _ := os.ReadFile(filepath.Join(dir, "etc/mysql/dbjob.cnf"))
	if code != 200 || string(job) != "repman_job:"+JobPassword(key, "cluster1")+"\n" || strings.Contains(body, "admin-secret") {
		t.Fatalf("anonymous legacy bundle: %d %q", code, job)
	}
	if code, body := get(t, base+px); code != 401 || body != bodyProxyAnon {
		t.Fatalf("anonymous legacy proxy bundle: %d %q", code, body)
	}
	if code, body := getAuth(t, base+db, "Bearer "+strings.Repeat("0", 64)); code != 401 || body != bodyBadCredential {
		t.Fatalf("a wrong credential is refused even with legacy routes: %d %q", code, body)
	}
	if code, _ := getAs(t, f, base, px); code != 200 {
		t.Fatalf("proxy bundle with its credential under legacy routes: %d", code)
	}
	f.c.Settings.APICredentialsSecureConfig = true
	if code, body := get(t, base+db); code != 401 || body != bodySecureConfig {
		t.Fatalf("anonymous legacy bundle with secure config: %d %q", code, body)
	}
	f.c.Settings.APICredentialsSecureConfig = false

	// A bundle failure is a 404 whose body does not leak the error.
	h.Bundles = BundleFunc(func(context.Context, *config.Cluster, orchestrator.Target, *JobLogin) ([]byte, error) {
		return nil, errors.New("secret detail")
	})
	if code, body := getAs(t, f, base, db); code != 404 || strings.Contains(body, "secret") {
		t.Fatalf("bundle error: %d %q", code, body)
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct{ host, port, want string }{
		{"[2001:db8::1]", "2099", "[2001:db8::1]:2099"},
		{"%5B2001:db8::1%5D", "2099", "[2001:db8::1]:2099"},
		{"%5b2001:db8::1%5d", "2099", "[2001:db8::1]:2099"},
		{"2001:db8::1", "2099", "[2001:db8::1]:2099"},
		{"10.0.0.1", "6032", "10.0.0.1:6032"},
		{"db1", "3306", "db1:3306"},
		{"db1:3307", "3306", ""},
		{"[2001:db8::1]:5", "3306", ""},
		{"db1", "0", ""},
		{"db1", "x", ""},
		{"", "3306", ""},
	} {
		got, err := ParseServer(tc.host, tc.port)
		if (tc.want == "") != (err != nil) || (err == nil && got.String() != tc.want) {
			t.Errorf("ParseServer(%q, %q) = %v, %v; want %q", tc.host, tc.port, got, err, tc.want)
		}
	}
}

// Under legacy routes, SlapOS's unchanged scripts work: the database cron script's admin
// token consumes need-start, and the ProxySQL partition (the proxy's own address) gets its
// full bundle anonymously; any other address does not.
func TestLegacyRoutesForSlapOSScripts(t *testing.T) {
	_, f, h := newServer(t)
	h.Authorize = func(r *http.Request, c *config.Cluster) bool {
		return r.Header.Get("Authorization") == "Bearer admin.token"
	}
	serve := func(path, auth, remote string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/clusters/"+path, nil)
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	db := f.o.Placement().Databases[0].Addr
	n, err := f.o.Node(db)
	if err != nil {
		t.Fatal(err)
	}
	start := "cluster1/servers/[2001:db8::10]/2099/need-start"
	if err := n.Set(CookieWaitStart); err != nil {
		t.Fatal(err)
	}
	if code, _ := serve(start, "Bearer admin.token", "192.0.2.1:5000"); code != 401 {
		t.Fatalf("admin token without legacy routes: %d", code)
	}
	f.c.Settings.SlapOSLegacyAnonymousRoutes = true
	if code, body := serve(start, "Bearer other.token", "192.0.2.1:5000"); code != 401 {
		t.Fatalf("a token Authorize refuses: %d %q", code, body)
	}
	if code, body := serve(start, "Bearer admin.token", "192.0.2.1:5000"); code != 200 || body != bodyNeedStart {
		t.Fatalf("admin token under legacy routes: %d %q", code, body)
	}
	if code, _ := serve(start, "Bearer admin.token", "192.0.2.1:5000"); code != 500 {
		t.Fatalf("start consumed twice: %d", code)
	}
	px := "cluster1/servers/10.0.74.165/6032/config"
	if code, body := serve(px, "", "10.0.74.165:41000"); code != 200 || !strings.Contains(body, "") {
		t.Fatalf("anonymous proxy bundle from the proxy's address: %d", code)
	}
	if code, body := serve(px, "", "10.0.74.166:41000"); code != 401 || body != bodyProxyAnon {
		t.Fatalf("anonymous proxy bundle from elsewhere: %d %q", code, body)
	}
	f.c.Settings.SlapOSLegacyAnonymousRoutes = false
	if code, _ := serve(px, "", "10.0.74.165:41000"); code != 401 {
		t.Fatalf("anonymous proxy bundle without legacy routes: %d", code)
	}
}
