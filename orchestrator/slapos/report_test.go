package slapos

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"replication-manager-pro/ipv6"
)

// postAuth POSTs body to url with "Authorization: <auth>" (none when empty).
func postAuth(t *testing.T, url, auth, body string) (int, string) {
	t.Helper()
	return doAuth(t, http.MethodPost, url, auth, body)
}

// A partition agent's report reaches the manager's Report with the node's address, only
// from the node's own credential, and bad reports are refused naming the field.
func TestReportReachesTheManager(t *testing.T) {
	srv, f, h := newServer(t)
	f.c.Settings.SlapOSLegacyAnonymousRoutes = true
	var mu sync.Mutex
	type got struct {
		cluster string
		server  ipv6.HostPort
		rep     AgentReport
	}
	var reports []got
	h.Report = func(c string, s ipv6.HostPort, r AgentReport) {
		mu.Lock()
		reports = append(reports, got{c, s, r})
		mu.Unlock()
	}
	p := f.o.Placement()
	master, other := p.Databases[0].Addr, p.Databases[2].Addr
	path := "cluster1/servers/" + master.HostBracketed() + "/2099/report"
	url := srv.URL + "/api/clusters/" + path
	cred := "Bearer " + credFor(t, f, path)
	good := `{"action":"start","via":"watch","result":"done","detail":"pid 42","future":1}`

	if code, body := postAuth(t, url, "", good); code != http.StatusUnauthorized {
		t.Fatalf("anonymous report with legacy routes on: %d %s", code, body)
	}
	if code, _ := postAuth(t, url, "Bearer "+credFor(t, f, "cluster1/servers/"+other.HostBracketed()+"/2299/report"), good); code != http.StatusUnauthorized {
		t.Fatalf("another node's credential: %d", code)
	}
	if code, _ := getAuth(t, url, cred); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", code)
	}
	for body, field := range map[string]string{
		`{"action":"Start; DROP","result":"done"}`:       "action",
		`{"action":"start","result":"maybe"}`:            "result",
		`{"action":"start","via":"a b","result":"done"}`: "via",
		`not json`:                              "JSON",
		`{"action":"start","result":"done"} {}`: "one JSON object",
		`{"action":"start","result":"done","detail":"` + strings.Repeat("x", MaxReportBody) + `"}`: "JSON",
	} {
		code, msg := postAuth(t, url, cred, body)
		if code != http.StatusBadRequest || !strings.Contains(msg, field) {
			t.Errorf("report %.40q: %d %q, want 400 naming %s", body, code, msg, field)
		}
	}
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("%d refused reports reached the manager", n)
	}
	long := `{"action":"job:reseedmariabackup","via":"jobs","result":"failed","error":"line one\nline two ` + strings.Repeat("é", 400) + `"}`
	for _, body := range []string{good, long} {
		if code, msg := postAuth(t, url, cred, body); code != http.StatusNoContent {
			t.Fatalf("report: %d %s", code, msg)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 || reports[0].cluster != "cluster1" || !ipv6.SameAddr(reports[0].server, master) {
		t.Fatalf("reports %+v", reports)
	}
	if s := reports[0].rep.String(); s != "agent: start (watch): done: pid 42" {
		t.Fatalf("message %q", s)
	}
	e := reports[1].rep.Error
	if strings.Contains(e, "\n") || len(e) > 512+3 || !strings.HasPrefix(e, "line one line two é") {
		t.Fatalf("error not cut to one line: %q (%d bytes)", e, len(e))
	}
}
