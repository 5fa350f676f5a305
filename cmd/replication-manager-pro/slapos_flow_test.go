package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/configurator"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/topology"
)

// renderedDaemon is a daemon serving a configuration rendered from the seed's request.
type renderedDaemon struct {
	out               string // the render's output directory
	apiPort, httpPort int
	adminPW           string
	creds             map[string]string // address -> partition credential
	log               *bytes.Buffer
}

// startRenderedDaemon renders the seed's request (with extra parameters merged in), adds
// two API users without the prov grant (dba, nogrant), and runs the daemon on it.
func startRenderedDaemon(t *testing.T, extra map[string]any) *renderedDaemon {
	t.Helper()
	params := slaposRequest
	if len(extra) > 0 {
		var req map[string]any
		b, err := os.ReadFile(slaposRequest)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		for k, v := range extra {
			req[k] = v
		}
		b, _ = json.Marshal(req)
		params = filepath.Join(t.TempDir(), "request.json")
		if err := os.WriteFile(params, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := &renderedDaemon{out: t.TempDir(), creds: map[string]string{}, log: &bytes.Buffer{}}
	if o, e, code := runCmd(t, "slapos", "render", "--parameters", params, "--out", d.out); code != 0 {
		t.Fatalf("render: %d\n%s\n%s", code, o, e)
	}
	cfgPath := filepath.Join(d.out, "config.toml")
	cfgText, _ := os.ReadFile(cfgPath)
	cred := regexp.MustCompile(`api-credentials = "admin:([^"]+)"`).FindSubmatch(cfgText)
	if cred == nil {
		t.Fatalf("no api-credentials in config.toml")
	}
	d.adminPW = string(cred[1])
	cfgText = bytes.Replace(cfgText, cred[0], []byte(`api-credentials = "admin:`+d.adminPW+`,dba:dba-password-1,nogrant:nogrant-password-1"`), 1)
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	var creds []slapos.NodeCredential
	b, _ := os.ReadFile(filepath.Join(d.out, "partition-credentials.json"))
	if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 5 {
		t.Fatalf("partition-credentials.json: %v\n%s", err, b)
	}
	for _, c := range creds {
		d.creds[c.Address] = c.Credential
	}
	d.apiPort, d.httpPort = testenv.FreePort(t), testenv.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(d.log)
	root.SetErr(d.log)
	root.SetArgs([]string{"monitor", "--config", cfgPath,
		"--api-port", fmt.Sprint(d.apiPort), "--http-port", fmt.Sprint(d.httpPort), "--monitoring-ticker", "1"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d
}

// run runs a bash script against the daemon, with API_PORT, HTTP_PORT, PASSWORD, WORK and
// the given variables in its environment.
func (d *renderedDaemon) run(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -eu\napi=https://127.0.0.1:$API_PORT; http=http://127.0.0.1:$HTTP_PORT\n"+
		"for i in $(seq 100); do curl -sk -o /dev/null \"$api/api/status\" && break; sleep 0.1; done\n"+
		"login() { curl -sk -X POST -H 'Content-Type: application/json' -d \"{\\\"username\\\":\\\"$1\\\",\\\"password\\\":\\\"$2\\\"}\" \"$api/api/login\" | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/'; }\n"+
		script)
	cmd.Env = append(append(os.Environ(), "API_PORT="+fmt.Sprint(d.apiPort), "HTTP_PORT="+fmt.Sprint(d.httpPort),
		"PASSWORD="+d.adminPW), env...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s\ndaemon log:\n%s", err, got, d.log.String())
	}
	return string(got)
}

func wantLines(t *testing.T, got string, d *renderedDaemon, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w+"\n") {
			t.Fatalf("script output lacks %q:\n%s\ndaemon log:\n%s", w, got, d.log.String())
		}
	}
}

// TestSlapOSPartitionFlowThroughDaemon does what a partition agent does, with bash and
// curl, against the daemon serving a configuration rendered from the seed's request: poll
// need-start for a bracketed IPv6 host with the partition's credential from the render
// (500 until a start is requested, 200 once, 500 again), then download the configuration
// bundle over plain HTTP and untar it. Anonymous callers, other partitions' credentials and
// users without the prov grant get 401 and consume nothing; the admin's token downloads a
// bundle but cannot consume a start.
func TestSlapOSPartitionFlowThroughDaemon(t *testing.T) {
	realtest.LookPath(t, "curl", "curl")
	realtest.LookPath(t, "bash", "bash")
	d := startRenderedDaemon(t, nil)
	db := ipv6.HostPort{Host: "::1", Port: 2099}
	work := t.TempDir()
	got := d.run(t, `
token=$(login admin "$PASSWORD"); dba=$(login dba dba-password-1); nogrant=$(login nogrant nogrant-password-1)
U="$http/api/clusters/cluster1/servers/[::1]/2099"
need() { curl -sg -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$U/need-start"; }
echo "before $(need "$CRED")"
echo "start $(curl -sk -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$api/api/clusters/cluster1/servers/$SERVER_ID/actions/start")"
echo "anonymous $(curl -sg -o /dev/null -w '%{http_code}' "$U/need-start")"
echo "other partition $(need "$OTHER")"
echo "admin token $(need "$token")"
echo "after $(need "$CRED")"
echo "again $(need "$CRED")"
cfg() { curl -sg -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$http/api/clusters/cluster1/servers/%5B%3A%3A1%5D/2099/config"; }
echo "config anonymous $(curl -sg -o /dev/null -w '%{http_code}' "$http/api/clusters/cluster1/servers/%5B%3A%3A1%5D/2099/config")"
echo "config nogrant $(cfg "$nogrant")"
echo "config dba $(cfg "$dba")"
echo "config admin $(cfg "$token")"
echo "config other partition $(cfg "$OTHER")"
curl -sgf -H "Authorization: Bearer $CRED" -o "$WORK/config.tar.gz" "$http/api/clusters/cluster1/servers/%5B%3A%3A1%5D/2099/config"
mkdir -p "$WORK/partition" && tar -xzf "$WORK/config.tar.gz" -C "$WORK/partition"
echo "untarred"
`, "CRED="+d.creds["[::1]:2099"], "OTHER="+d.creds["[::1]:2199"], "SERVER_ID="+topology.ServerIDFor(db), "WORK="+work)
	wantLines(t, got, d, "before 500", "start 200", "anonymous 401", "other partition 401", "admin token 401",
		"after 200", "again 500", "config anonymous 401", "config nogrant 401", "config dba 401", "config admin 200",
		"config other partition 401", "untarred")
	// The bundle's paths point into the first database's partition.
	part := filepath.Join(work, "partition")
	mycnf, err := os.ReadFile(filepath.Join(part, "etc", "mysql", "my.cnf"))
	if err != nil {
		t.Fatalf("bundle without etc/mysql/my.cnf: %v", err)
	}
	if _, err := os.Stat(filepath.Join(part, "data", ".system")); err != nil {
		t.Fatalf("bundle without data/.system: %v", err)
	}
	if !strings.Contains(string(mycnf), filepath.Join(d.out, "")) {
		t.Fatalf("my.cnf does not point into the partitions under %s:\n%s", d.out, mycnf)
	}
	for _, secret := range append([]string{d.adminPW}, d.creds["[::1]:2099"], d.creds["[::1]:2199"]) {
		if strings.Contains(got+d.log.String(), secret) {
			t.Fatal("a secret was printed")
		}
	}
}

// TestSlapOSLegacyAnonymousRoutes: with slapos-legacy-anonymous-routes (a request
// parameter), SlapOS' unchanged scripts poll anonymously, and the bundle they get carries
// the job account in dbjob.cnf, not the db-servers-credential; a ProxySQL bundle is only
// served with its credential or to the proxy's own address.
func TestSlapOSLegacyAnonymousRoutes(t *testing.T) {
	realtest.LookPath(t, "curl", "curl")
	realtest.LookPath(t, "bash", "bash")
	d := startRenderedDaemon(t, map[string]any{"slapos-legacy-anonymous-routes": true})
	work := t.TempDir()
	got := d.run(t, `
token=$(login admin "$PASSWORD")
U="$http/api/clusters/cluster1/servers/[::1]/2099"
echo "start $(curl -sk -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$api/api/clusters/cluster1/servers/$SERVER_ID/actions/start")"
echo "anonymous $(curl -sg -o /dev/null -w '%{http_code}' "$U/need-start")"
echo "anonymous again $(curl -sg -o /dev/null -w '%{http_code}' "$U/need-start")"
curl -sgf -o "$WORK/config.tar.gz" "$U/config"
mkdir -p "$WORK/partition" && tar -xzf "$WORK/config.tar.gz" -C "$WORK/partition"
echo "untarred"
echo "proxy anonymous $(curl -sg -o /dev/null -w '%{http_code}' "$http/api/clusters/cluster1/servers/127.0.0.1/6032/config")"
echo "proxy credential $(curl -sg -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PROXY" "$http/api/clusters/cluster1/servers/127.0.0.1/6032/config")"
`, "SERVER_ID="+topology.ServerIDFor(ipv6.HostPort{Host: "::1", Port: 2099}), "WORK="+work, "PROXY="+d.creds["127.0.0.1:6032"])
	// The ProxySQL's address is 127.0.0.1, the script's: its anonymous bundle is served (to
	// that address only, see orchestrator/slapos TestLegacyRoutesForSlapOSScripts).
	wantLines(t, got, d, "start 200", "anonymous 200", "anonymous again 500", "untarred", "proxy anonymous 200", "proxy credential 200")
	job, err := os.ReadFile(filepath.Join(work, "partition", "etc", "mysql", "dbjob.cnf"))
	if err != nil {
		t.Fatal(err)
	}
	secrets, _ := os.ReadFile(filepath.Join(d.out, "secrets.json"))
	var sec struct {
		Clusters map[string]struct{ DB string } `json:"clusters"`
	}
	if err := json.Unmarshal(secrets, &sec); err != nil || sec.Clusters["cluster1"].DB == "" {
		t.Fatalf("secrets.json: %v", err)
	}
	if strings.Contains(string(job), sec.Clusters["cluster1"].DB) || !strings.Contains(string(job), `user = "`+configurator.JobUser+`"`) {
		t.Fatalf("anonymous dbjob.cnf holds the admin login or not the job account:\n%s", job)
	}
}
