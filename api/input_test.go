package api

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"replication-manager-pro/ipv6"
)

const formType = "application/x-www-form-urlencoded"

// TestActionInputIsStrict: every malformed, unknown, repeated or mistyped parameter of an
// action route is a 400 naming the field (413 naming the limit for a large body, 415 for a
// body of another type), and the action does not run: issue 11 item 3 (the real-cluster
// reproduction is TestMalformedSwitchoverFormChangesNothing).
func TestActionInputIsStrict(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	m, _ := e.fleet.Get("c1")
	maint := "/api/clusters/c1/servers/" + deadID + "/actions/maintenance"
	cases := []struct {
		path, ctype, body string
		code              int
		want              string // in the answer
	}{
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=127.0.0.1:1%", 400, `field "prefmaster": malformed value: invalid percent escape "%"`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=127.0.0.1:1%zz", 400, `field "prefmaster"`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=", 400, `field "prefmaster": want host:port`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=127.0.0.1:1&prefmaster=127.0.0.1:2", 400, `field "prefmaster": given more than once`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=127.0.0.1:1;dryRun=true", 400, `';' is not a separator`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmastre=127.0.0.1:1", 400, `field "prefmastre": unknown field; this route accepts dryRun, prefmaster`},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=" + strings.Repeat("x", 2<<20), 413, "the limit is 1048576 bytes (1 MiB)"},
		{"/api/clusters/c1/actions/switchover", formType, "prefmaster=\xff", 400, `field "prefmaster": value is not valid UTF-8`},
		{"/api/clusters/c1/actions/switchover", "text/plain", "prefmaster=127.0.0.1:1", 415, `unsupported Content-Type "text/plain"`},
		{"/api/clusters/c1/actions/switchover", "application/json", `{"prefmaster": "127.0.0.1:1"`, 400, "malformed JSON"},
		{"/api/clusters/c1/actions/switchover", "application/json", `{"prefmaster": "127.0.0.1:1"} {}`, 400, "trailing data"},
		{"/api/clusters/c1/actions/switchover", "application/json", `{"dryRun": true, "dryRun": false}`, 400, `field "dryRun": given more than once`},
		{"/api/clusters/c1/actions/switchover", "application/json", `{"prefmaster": ["127.0.0.1:1"]}`, 400, `field "prefmaster": want a string`},
		{"/api/clusters/c1/actions/switchover", "application/json", `[1]`, 400, "want a JSON object"},
		{"/api/clusters/c1/actions/switchover", "", `{"nope": 1}`, 400, `field "nope": unknown field`},
		{"/api/clusters/c1/actions/failover", formType, "dryRun=tru", 400, `field "dryRun": want true or false, got "tru"`},
		{"/api/clusters/c1/actions/failover?force=maybe", "", "", 400, `field "force": want true or false`},
		{"/api/clusters/c1/actions/failover?dryRun=true", formType, "dryRun=true", 400, `field "dryRun": given more than once`},
		{"/api/clusters/c1/actions/failover?" + strings.Repeat("a=1&", 200), "", "", 400, "too many fields"},
		{"/api/clusters/c1/actions/replication/cleanup", formType, "dryrun=1&x=2", 400, `field "x": unknown field; this route accepts dryRun`},
		{"/api/clusters/c1/actions/reset-failover-control", formType, "yes=1", 400, `field "yes": unknown field; this route accepts no field`},
		{"/api/clusters/c1/topology/logs?n=abc", "", "", 400, `field "n": want a whole number from 1 to 10000`},
		{"/api/clusters/c1/topology/logs?n=0", "", "", 400, `field "n"`},
		{maint + "?on=1", "", "", 400, `field "on": unknown field`},
		{maint, formType, strings.Repeat("k", 100) + "=1", 400, "…(truncated, 100 bytes)"},
		// Path values.
		{"/api/clusters/..%2Fetc/actions/failover", "", "", 400, "invalid cluster"},
		{"/api/clusters/a..b/actions/failover", "", "", 400, "invalid cluster"},
		{"/api/clusters/c1/servers/127.0.0.1/99999/is-master", "", "", 400, "invalid port"},
		{"/api/clusters/c1/servers/a%20b/1/is-master", "", "", 400, "invalid host"},
		{"/api/clusters/c1/servers/db%0A1/actions/maintenance", "", "", 400, "invalid server"},
		{"/api/clusters/c1/settings/actions/switch/a%2Fb", "", "", 400, "invalid setting"},
	}
	for _, c := range cases {
		var hdr []string
		if c.ctype != "" {
			hdr = []string{"Content-Type", c.ctype}
		}
		r := e.do("POST", c.path, tok, strings.NewReader(c.body), hdr...)
		short := c.path + " " + c.body
		if len(short) > 100 {
			short = short[:100] + "..."
		}
		if r.code != c.code || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: %d %.300q, want %d with %q", short, r.code, r.body, c.code, c.want)
		}
		if len(r.body) > 600 {
			t.Errorf("%s: %d-byte answer repeats the request", short, len(r.body))
		}
		if m.Monitor.InMaintenance(ipv6.HostPort{Host: "127.0.0.1", Port: 1}) {
			t.Fatalf("%s: a refused request toggled maintenance", short)
		}
	}
	for _, ev := range e.events.Recent("c1", 0) {
		switch ev.Kind {
		case "state", "topology", "problem": // the monitor's own
		default:
			t.Errorf("a refused request left an event: %+v", ev)
		}
	}

	// Well-formed requests in every accepted encoding go through.
	ok := []struct{ path, ctype, body string }{
		{"/api/clusters/c1/topology/logs?n=5", "", ""},
		{"/api/clusters/c1/actions/replication/cleanup?dryRun=TRUE", "", ""},
		{"/api/clusters/c1/actions/replication/cleanup", formType, "dryrun=1"},
		{"/api/clusters/c1/actions/replication/cleanup", "application/json; charset=utf-8", `{"dryRun": true}`},
		{"/api/clusters/c1/actions/replication/cleanup", "", `{"dryRun": "yes"}`},
		{"/api/clusters/c1/actions/reset-failover-control", formType, ""},
	}
	for _, c := range ok {
		var hdr []string
		if c.ctype != "" {
			hdr = []string{"Content-Type", c.ctype}
		}
		if r := e.do("POST", c.path, tok, strings.NewReader(c.body), hdr...); r.code != 200 {
			t.Errorf("%s %s: %d %q, want 200", c.path, c.body, r.code, r.body)
		}
	}
	// multipart/form-data: fields accepted, files refused.
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("dryRun", "true")
	mw.Close()
	if r := e.do("POST", "/api/clusters/c1/actions/replication/cleanup", tok, &b, "Content-Type", mw.FormDataContentType()); r.code != 200 {
		t.Errorf("multipart dryRun: %d %q", r.code, r.body)
	}
	b.Reset()
	mw = multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("dryRun", "x.txt")
	fw.Write([]byte("true"))
	mw.Close()
	if r := e.do("POST", "/api/clusters/c1/actions/replication/cleanup", tok, &b, "Content-Type", mw.FormDataContentType()); r.code != 400 || !strings.Contains(r.body, "files are not accepted") {
		t.Errorf("multipart file: %d %q", r.code, r.body)
	}
}

// TestLoginBodyIsStrictAndBounded: /api/login refuses bodies over 8 KiB (413 naming the
// limit), unknown fields and trailing data.
func TestLoginBodyIsStrictAndBounded(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	cases := []struct {
		body string
		code int
		want string
	}{
		{fmt.Sprintf(`{"username":%q,"password":"x"}`, strings.Repeat("a", 60<<10)), 413, "the limit is 8192 bytes (8 KiB)"},
		{`{"username":"admin","password":"x","role":"root"}`, 400, `unknown field "role"`},
		{`{"username":"admin","password":"x"} {"username":"b"}`, 400, "trailing data"},
		{"{\"username\":\"adm\xffin\",\"password\":\"x\"}", 400, "not valid UTF-8"},
	}
	for _, c := range cases {
		r := e.do("POST", "/api/login", "", strings.NewReader(c.body))
		if r.code != c.code || !strings.Contains(r.body, c.want) {
			t.Errorf("login %.60q: %d %.200q, want %d with %q", c.body, r.code, r.body, c.code, c.want)
		}
	}
}

// TestCORSOnlyForConfiguredOrigins: no CORS header at all by default (issue 11 item 1:
// every answer used to carry Access-Control-Allow-Origin: *, so any page could read the
// API); with api-cors-allow-origins, only a listed Origin is echoed, with Vary: Origin.
func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	def := newDeadEnv(t, "", nil)
	for _, h := range []http.Handler{def.srv.APIHandler(), def.srv.HTTPHandler()} {
		for _, m := range []string{"GET", "OPTIONS"} {
			r := serve(h, m, "/api/status", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
			for k := range r.hdr {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("default %s: CORS header %s: %v", m, k, r.hdr[k])
				}
			}
		}
	}

	e := newDeadEnv(t, `api-cors-allow-origins = "https://ui.example.org, http://localhost:8080/"`, nil)
	for _, h := range []http.Handler{e.srv.APIHandler(), e.srv.HTTPHandler()} {
		r := serve(h, "GET", "/api/status", "", nil, "Origin", "https://UI.example.org")
		if r.hdr.Get("Access-Control-Allow-Origin") != "https://UI.example.org" || r.hdr.Get("Vary") != "Origin" {
			t.Errorf("listed origin: %v", r.hdr)
		}
		r = serve(h, "OPTIONS", "/api/clusters/c1/actions/failover", "", nil, "Origin", "http://localhost:8080", "Access-Control-Request-Method", "POST")
		if r.code != http.StatusNoContent || r.hdr.Get("Access-Control-Allow-Origin") != "http://localhost:8080" ||
			!strings.Contains(r.hdr.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(r.hdr.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("listed preflight: %d %v", r.code, r.hdr)
		}
		for _, o := range []string{"https://evil.example", "https://ui.example.org.evil.example", "null", "https://ui.example.org:444"} {
			r := serve(h, "GET", "/api/status", "", nil, "Origin", o)
			if r.hdr.Get("Access-Control-Allow-Origin") != "" || r.hdr.Get("Vary") != "Origin" {
				t.Errorf("origin %s: %v", o, r.hdr)
			}
			r = serve(h, "OPTIONS", "/api/status", "", nil, "Origin", o)
			if r.code != http.StatusNoContent || r.hdr.Get("Access-Control-Allow-Origin") != "" || r.hdr.Get("Access-Control-Allow-Headers") != "" {
				t.Errorf("preflight of %s: %d %v", o, r.code, r.hdr)
			}
		}
	}
}

// TestReadInputDirect exercises readInput on requests built by hand (Content-Length
// announced beyond the limit, no body).
func TestReadInputDirect(t *testing.T) {
	req := httptest.NewRequest("POST", "/x", strings.NewReader("a=1"))
	req.ContentLength = 2 << 20
	if _, e := readInput(httptest.NewRecorder(), req, nil); e == nil || e.code != 413 {
		t.Fatalf("announced 2 MiB: %v", e)
	}
	req = httptest.NewRequest("GET", "/x?dryRun=on", nil)
	v, e := readInput(httptest.NewRecorder(), req, []argSpec{pDryRun})
	if e != nil || !v.bool("dryRun") {
		t.Fatalf("query only: %v %v", v, e)
	}
}
