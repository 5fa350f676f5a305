package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/tenant"
	"replication-manager-pro/topology"
)

// The tenant database routes on a real 2-node cluster (no proxy: the URLs are empty; the
// proxies and the URLs are tested end to end in cmd/replication-manager-pro).
func TestRealDatabasesRoutes(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	dir := t.TempDir()
	path := writeConfig(t, dir, "", realCluster("c1", []string{c.Servers[0].Addr(), c.Servers[1].Addr()}, "proxysql = true\nproxysql-servers = \"127.0.0.1:1\"\nproxysql-port = 7032\nproxysql-servers-ipv6 = \"[::1]\"\n"),
		realCluster("c2", []string{"127.0.0.1:1"}, ""))
	e := newEnv(t, dir, path, nil)
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave)
	tok := e.login("admin", apiPassword)
	base := "/api/clusters/c1/databases"
	do := func(method, target, body string, hdr ...string) resp {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		return e.do(method, target, tok, rd, hdr...)
	}
	gtid := func() string { return c.Master().QueryString(t, "SELECT @@gtid_binlog_pos") }

	// Grants: a user without db-tenants gets 403, no token 401.
	foo := e.login("foo", "foo-pw")
	if r := e.do("GET", base, foo, nil); r.code != http.StatusForbidden {
		t.Fatalf("foo: %d %s", r.code, r.body)
	}
	if r := e.do("GET", base, "", nil); r.code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.code)
	}
	if r := do("GET", base, ""); r.code != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Fatalf("empty list: %d %s", r.code, r.body)
	}

	// POST with JSON: 201, the database in the answer; a proxy that is down gives 502 with
	// the result (the database is in place, a later call retries).
	hostile := `pa'ss"wo\rd`
	b, _ := json.Marshal(map[string]any{"reference": "SOFTINST-7", "db_password": hostile, "db_charset": "utf8mb4_bin", "require_ssl": "false"})
	r := do("POST", base, string(b), "Content-Type", "application/json")
	if r.code != http.StatusBadGateway || !strings.Contains(r.body, `"created":["SOFTINST-7"]`) || !strings.Contains(r.body, "proxies could not be updated") {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	var a struct {
		Result   tenant.Result
		Database tenant.Tenant
	}
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatal(err)
	}
	if a.Database.Database != "db_softinst_7" || a.Database.RequireSSL || a.Database.Charset != "utf8mb4" || a.Database.Collation != "utf8mb4_bin" {
		t.Fatalf("database %+v", a.Database)
	}
	u, err := url.Parse(a.Database.Published.URL)
	if err != nil || u.Host != "[::1]:7032" {
		t.Fatalf("url %q: %v", a.Database.Published.URL, err)
	}
	if pw, _ := u.User.Password(); pw != hostile {
		t.Fatalf("published password %q", pw)
	}
	if !strings.HasSuffix(a.Database.Published.URLv4, "@127.0.0.1:7032/db_softinst_7") {
		t.Fatalf("url_v4 %s", a.Database.Published.URLv4)
	}
	// The account works with the password as given.
	db := c.Master().DB(t, testenv.WithUser("softinst7", hostile), testenv.WithDatabase("db_softinst_7"))
	if err := db.Ping(); err != nil {
		t.Fatalf("tenant login: %v", err)
	}

	// POST again (form fields): 200, nothing changes (the password is set at creation only).
	before := gtid()
	r = do("POST", base, url.Values{"reference": {"SOFTINST-7"}, "db_password": {"other"}, "require_ssl": {"false"}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if (r.code != 200 && r.code != http.StatusBadGateway) || !strings.Contains(r.body, `"unchanged":["SOFTINST-7"]`) {
		t.Fatalf("POST again: %d %s", r.code, r.body)
	}
	if gtid() != before {
		t.Fatal("a repeated POST wrote to the binary log")
	}

	// GET one and the list, through /api/databases too.
	if r := do("GET", base+"/SOFTINST-7", ""); r.code != 200 || !strings.Contains(r.body, `"reference":"SOFTINST-7"`) {
		t.Fatalf("GET one: %d %s", r.code, r.body)
	}
	if r := do("GET", base+"/SOFTINST-8", ""); r.code != http.StatusNotFound {
		t.Fatalf("GET unknown: %d %s", r.code, r.body)
	}
	if r := do("GET", "/api/databases", ""); r.code != 200 || !strings.Contains(r.body, "SOFTINST-7") {
		t.Fatalf("GET /api/databases: %d %s", r.code, r.body)
	}

	// Refused requests: 400 naming the field, nothing changed.
	before = gtid()
	for _, c := range []struct {
		method, target, body, want string
	}{
		{"POST", base, `{"reference": "x'; DROP DATABASE mysql; --"}`, "reference"},
		{"POST", base, `{"reference": "../../x"}`, "reference"},
		{"POST", base, `{"reference": "` + strings.Repeat("x", 300) + `"}`, "reference"},
		{"POST", base, `{"reference": "ünïcödé"}`, "reference"},
		{"POST", base, `{"reference": "mysql"}`, "reserved"},
		{"POST", base, `{"reference": "ok", "db_charset": "utf8mb4; DROP DATABASE x"}`, "db_charset"},
		{"POST", base, `{"reference": "ok", "db_password": "a\u0000b"}`, "db_password"},
		{"POST", base, `{"reference": "ok", "require_ssl": "maybe"}`, "require_ssl"},
		{"POST", base, `{"reference": "ok", "evil": 1}`, "evil"},
		{"POST", base, `{"reference": "ok", "cluster-id": "c2"}`, "cluster-id"},
		{"POST", base, `{"reference": "ok"} {}`, "after"},
		{"POST", base, "reference=ok&reference=ok2", "twice"},
		{"POST", base, `{"reference": "ok", "reference": "mysql"}`, "twice"},
		{"PUT", base, `{"databases": [{"reference": "ok", "db_charset": "x", "db_charset": "utf8"}]}`, "twice"},
		{"PUT", base, `{"databases": [{"reference": "SOFTINST-7"}, {"reference": "../x"}]}`, "databases[1].reference"},
		{"PUT", base, `{"databases": [{"reference": "a"}, {"reference": "a"}]}`, "twice"},
		{"PUT", base, `{"dbs": []}`, "dbs"},
		{"PUT", base, `{}`, "databases"},
		{"PUT", base, `[{"reference": 7}]`, "reference"},
		{"DELETE", base + "/..%2F..%2Fx", "", "reference"},
		{"DELETE", base + "/" + strings.Repeat("x", 300), "", "reference"},
		{"DELETE", base + "/mysql", "", "reserved"},
	} {
		r := do(c.method, c.target, c.body, "Content-Type", "application/json")
		if c.method == "POST" && strings.Contains(c.body, "=") && !strings.HasPrefix(c.body, "{") {
			r = do(c.method, c.target, c.body, "Content-Type", "application/x-www-form-urlencoded")
		}
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, c.want) {
			t.Errorf("%s %.60s %.60q: %d %s, want 400 naming %s", c.method, c.target, c.body, r.code, r.body, c.want)
		}
		if strings.Contains(r.body, "a\x00b") {
			t.Errorf("the answer echoes the password")
		}
	}
	if after := gtid(); after != before {
		t.Fatalf("refused requests wrote to the binary log: %s -> %s", before, after)
	}
	// The cluster's own account: 400. A database the manager did not create: 409.
	if r := do("POST", base, `{"reference": "repl"}`); r.code != http.StatusBadRequest || !strings.Contains(r.body, "own accounts") {
		t.Fatalf("repl: %d %s", r.code, r.body)
	}
	c.Master().Exec(t, "CREATE DATABASE db_conflict")
	before = gtid()
	if r := do("POST", base, `{"reference": "conflict"}`); r.code != http.StatusConflict || !strings.Contains(r.body, "db_conflict") {
		t.Fatalf("conflict: %d %s", r.code, r.body)
	}
	if gtid() != before {
		t.Fatal("a refused conflict wrote to the binary log")
	}

	// PUT converges: SOFTINST-7 kept, two created; then one removed.
	r = do("PUT", base, `{"databases": [{"reference": "SOFTINST-7", "require_ssl": false}, {"reference": "SOFTINST-8"}, {"reference": "wordpress", "db_charset": "latin1"}]}`)
	if !strings.Contains(r.body, `"created":["SOFTINST-8","wordpress"]`) || !strings.Contains(r.body, `"unchanged":["SOFTINST-7"]`) {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	before = gtid()
	r = do("PUT", base, `[{"reference": "SOFTINST-7", "require_ssl": false}, {"reference": "SOFTINST-8"}, {"reference": "wordpress"}]`)
	if !strings.Contains(r.body, `"created":null`) || !strings.Contains(r.body, `"removed":null`) || gtid() != before {
		t.Fatalf("repeated PUT changed something: %d %s", r.code, r.body)
	}
	r = do("PUT", base, `{"databases": [{"reference": "SOFTINST-7", "require_ssl": false}, {"reference": "wordpress"}]}`)
	if !strings.Contains(r.body, `"removed":["SOFTINST-8"]`) {
		t.Fatalf("PUT removal: %d %s", r.code, r.body)
	}
	c.WaitSync(t)
	if got := c.Servers[1].QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'db_softinst_8'"); got != "0" {
		t.Fatal("db_softinst_8 still on the replica")
	}

	// DELETE.
	r = do("DELETE", base+"/wordpress", "")
	if !strings.Contains(r.body, `"removed":["wordpress"]`) {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if r := do("DELETE", base+"/wordpress", ""); r.code != http.StatusNotFound {
		t.Fatalf("DELETE again: %d %s", r.code, r.body)
	}
	c.WaitSync(t)
	for i, s := range c.Servers {
		if got := s.QueryString(t, "SELECT COUNT(*) FROM mysql.user WHERE User = 'wordpress'"); got != "0" {
			t.Fatalf("server %d: wordpress accounts left", i)
		}
	}

	// /api/databases: an unknown cluster-id goes to the first cluster (c1).
	r = do("POST", "/api/databases", `{"reference": "SOFTINST-9", "cluster-id": "nope"}`)
	if !strings.Contains(r.body, `"cluster":"c1"`) || !strings.Contains(r.body, `"created":["SOFTINST-9"]`) {
		t.Fatalf("POST /api/databases: %d %s", r.code, r.body)
	}
	// A cluster without a master: 503.
	if r := do("GET", "/api/clusters/c2/databases", ""); r.code != http.StatusServiceUnavailable {
		t.Fatalf("c2: %d %s", r.code, r.body)
	}
	// Unsupported methods.
	if r := do("PATCH", base, ""); r.code != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH: %d", r.code)
	}
	// 100 tenants converge in one PUT; the same PUT again changes nothing, not even the
	// binary log; the empty list removes them all (timings: BenchmarkPutDatabases100).
	var hundred []string
	for i := 0; i < 100; i++ {
		hundred = append(hundred, fmt.Sprintf(`{"reference": "SOFTINST-%d"}`, 1000+i))
	}
	body100 := `{"databases": [` + strings.Join(hundred, ",") + `]}`
	var res100 struct{ Result tenant.Result }
	r = do("PUT", base, body100)
	if err := json.Unmarshal([]byte(r.body), &res100); err != nil || len(res100.Result.Created) != 100 || len(res100.Result.Removed) != 2 {
		t.Fatalf("PUT 100: %d %.300s", r.code, r.body)
	}
	before = gtid()
	r = do("PUT", base, body100)
	if err := json.Unmarshal([]byte(r.body), &res100); err != nil || res100.Result.Changed() || len(res100.Result.Unchanged) != 100 || gtid() != before {
		t.Fatalf("repeated PUT 100 changed something: %d %.300s", r.code, r.body)
	}
	c.WaitSync(t)
	if got := c.Servers[1].QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'db\\_softinst\\_1%'"); got != "100" {
		t.Fatalf("the replica has %s of the 100 databases", got)
	}
	r = do("PUT", base, `{"databases": [{"reference": "SOFTINST-7", "require_ssl": false}, {"reference": "SOFTINST-9"}]}`)
	if err := json.Unmarshal([]byte(r.body), &res100); err != nil || len(res100.Result.Removed) != 100 || len(res100.Result.Created) != 2 {
		t.Fatalf("PUT back to 2: %d %.300s", r.code, r.body)
	}

	// Database passwords never leak into answers (the tenants' own are published on purpose).
	r = do("GET", base, "")
	assertNoRealSecret(t, "GET databases", r)
	var list []tenant.Tenant
	if err := json.NewDecoder(bytes.NewReader([]byte(r.body))).Decode(&list); err != nil || len(list) != 2 {
		t.Fatalf("list %s: %v", r.body, err)
	}

}
