package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
)

func bundle(t *testing.T, mycnf string) []byte {
	t.Helper()
	entries := []configurator.Entry{
		{Path: "etc", Kind: configurator.KindDir, Mode: 0o755},
		{Path: "etc/mysql", Kind: configurator.KindDir, Mode: 0o755},
		{Path: "etc/mysql/my.cnf", Kind: configurator.KindFile, Mode: 0o644, Data: []byte(mycnf)},
		{Path: "etc/mysql/dbjob.cnf", Kind: configurator.KindFile, Mode: 0o600, Data: configurator.DBJobCnf("repman", `p"w\x`, "/x.sock")},
		{Path: "etc/mysql/custom.d", Kind: configurator.KindDir, Mode: 0o755},
		{Path: "data", Kind: configurator.KindDir, Mode: 0o750},
		{Path: "data/.system", Kind: configurator.KindDir, Mode: 0o750},
		{Path: "data/.system/logs", Kind: configurator.KindDir, Mode: 0o750},
	}
	var buf bytes.Buffer
	if err := configurator.WriteTarGz(&buf, entries, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInstallAsSlapOSLaysItOut: the bundle's etc/mysql replaces the partition's, .system goes
// into the datadir, var/system links to it, the operator's custom.d files stay, and Install
// tells whether the configuration changed.
func TestInstallAsSlapOSLaysItOut(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	changed, err := l.Install(bundle(t, "[mysqld]\nport = 2099\n"))
	if err != nil || !changed {
		t.Fatalf("first install: %v, changed %v", err, changed)
	}
	for _, p := range []string{l.MyCnf(), l.DBJobCnf(), filepath.Join(l.System(), "logs"), filepath.Join(l.ConfigTmp(), "config.tar.gz")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(filepath.Join(l.ConfigTmp(), "config.tar.gz")); st.Mode().Perm() != 0o600 {
		t.Fatalf("kept tarball mode %v, want 0600 (it holds dbjob.cnf)", st.Mode().Perm())
	}
	if target, err := os.Readlink(filepath.Join(l.Root, "var", "system")); err != nil || target != l.System() {
		t.Fatalf("var/system -> %q %v", target, err)
	}
	own := filepath.Join(l.EtcMySQL(), "custom.d", "50_mine.cnf")
	os.WriteFile(own, []byte("[mysqld]\nmax_connections = 7\n"), 0o644)
	if changed, err := l.Install(bundle(t, "[mysqld]\nport = 2099\n")); err != nil || changed {
		t.Fatalf("same bundle again: %v, changed %v", err, changed)
	}
	if changed, err := l.Install(bundle(t, "[mysqld]\nport = 2199\n")); err != nil || !changed {
		t.Fatalf("new bundle: %v, changed %v", err, changed)
	}
	if b, err := os.ReadFile(own); err != nil || !strings.Contains(string(b), "max_connections") {
		t.Fatalf("the operator's custom.d file was lost: %v", err)
	}
	if b, _ := os.ReadFile(l.MyCnf()); !strings.Contains(string(b), "2199") {
		t.Fatalf("my.cnf not replaced: %s", b)
	}
	ents, _ := os.ReadDir(filepath.Join(l.Root, "etc"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "mysql.old-") {
			t.Fatalf("left %s behind", e.Name())
		}
	}
	user, pw, err := clientLogin(l.DBJobCnf())
	if err != nil || user != "repman" || pw != `p"w\x` {
		t.Fatalf("dbjob.cnf login %q %q %v", user, pw, err)
	}
	// Not a database bundle: refused, the installed configuration untouched.
	var buf bytes.Buffer
	configurator.WriteTarGz(&buf, []configurator.Entry{{Path: "etc/proxysql.cnf", Kind: configurator.KindFile, Mode: 0o600, Data: []byte("x")}}, time.Unix(0, 0))
	if _, err := l.Install(buf.Bytes()); err == nil {
		t.Fatal("a bundle without etc/mysql/my.cnf was installed")
	}
	if _, err := os.Stat(l.MyCnf()); err != nil {
		t.Fatal("a refused bundle removed my.cnf")
	}
}

func TestParseClientLogin(t *testing.T) {
	for _, pw := range []string{"plain", `with "quotes" and \ backslash`, "tab\tand # hash ; semi", "  spaces  "} {
		user, got, err := parseClientLogin(bytes.NewReader(configurator.DBJobCnf("u-1", pw, "/s")))
		if err != nil || user != "u-1" || got != pw {
			t.Errorf("%q: got %q %q %v", pw, user, got, err)
		}
	}
	if _, _, err := parseClientLogin(strings.NewReader("[mysqld]\nuser = x\n")); err == nil {
		t.Error("no [client] user: no error")
	}
	if u, p, _ := parseClientLogin(strings.NewReader("[client]\nuser=bare # comment\npassword=x\n")); u != "bare" || p != "x" {
		t.Errorf("unquoted: %q %q", u, p)
	}
}

func TestAccountsSQL(t *testing.T) {
	sql := Accounts{User: "repman", Password: "pw'1", HeartbeatUser: "heartbeat", RequireSSL: true}.SQL()
	for _, want := range []string{
		"SET sql_log_bin=0;",
		"CREATE USER 'repman'@'localhost' IDENTIFIED BY 'pw''1';",
		"CREATE USER 'repman'@'%' IDENTIFIED BY 'pw''1' REQUIRE SSL;",
		"GRANT ALL PRIVILEGES ON *.* TO 'repman'@'%' WITH GRANT OPTION;",
		"GRANT SELECT, CREATE, CREATE VIEW, SHOW VIEW, DROP ON `replication_manager_schema`.* TO 'heartbeat'@'%';",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("missing %q in:\n%s", want, sql)
		}
	}
	if strings.Contains(sql, "'localhost' IDENTIFIED BY 'pw''1' REQUIRE SSL") || strings.Contains(sql, "ON *.* TO 'heartbeat'") {
		t.Errorf("REQUIRE SSL on localhost or global grants for the heartbeat:\n%s", sql)
	}
	if plain := (Accounts{User: "repman", Password: "x"}).SQL(); strings.Contains(plain, "REQUIRE SSL") || strings.Contains(plain, "heartbeat") {
		t.Errorf("without require-ssl and heartbeat:\n%s", plain)
	}
}

// TestClientAnswers: the answers of replication-manager's need-* routes and of this
// manager's, as the agent reads them; a manager without the watch route is told apart.
func TestClientAnswers(t *testing.T) {
	answers := map[string]struct {
		code int
		body string
	}{
		"need-start":         {200, "200 -Need start!"},
		"need-stop":          {500, "500 -No stop needed!"},
		"need-restart":       {200, "503 -No restart needed!"}, // replication-manager: 200 with a 503 body
		"need-config-change": {503, "503 -No config change needed!"},
		"need-prov":          {500, "500 -No valid server!"},
		"need-reprov":        {401, "401 -Partition credential not valid for this node!"},
		"watch":              {404, "404 page not found"},
	}
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		a := answers[filepath.Base(r.URL.Path)]
		w.WriteHeader(a.code)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	c, err := newClient(Config{Manager: srv.URL, Cluster: "c1", Addr: ipv6.HostPort{Host: "2001:db8::1", Port: 2099}, Credential: "cred"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for route, want := range map[string]bool{"need-start": true, "need-stop": false, "need-restart": false, "need-config-change": false} {
		if got, err := c.need(ctx, route); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", route, got, err, want)
		}
	}
	if _, err := c.need(ctx, "need-prov"); err == nil {
		t.Error("an unknown server is not an error")
	}
	if _, err := c.need(ctx, "need-reprov"); !errors.Is(err, errUnauthorized) {
		t.Errorf("401: %v", err)
	}
	if _, err := c.watch(ctx, time.Second); !errors.Is(err, errNoWatch) {
		t.Errorf("watch on a manager without it: %v", err)
	}
	if auth != "Bearer cred" {
		t.Errorf("Authorization %q", auth)
	}
	if !strings.Contains(c.nodeURL("x"), "/servers/[2001:db8::1]/2099/x") {
		t.Errorf("node URL %s", c.nodeURL("x"))
	}
}
