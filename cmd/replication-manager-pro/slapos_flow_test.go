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

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// TestSlapOSPartitionFlowThroughDaemon does what SlapOS's cron scripts do, with bash and
// curl, against the daemon serving a configuration rendered from the seed's request: log in,
// poll need-start for a bracketed IPv6 host (500 until a start is requested, 200 once, 500
// again), then download the configuration bundle over plain HTTP and untar it.
func TestSlapOSPartitionFlowThroughDaemon(t *testing.T) {
	realtest.LookPath(t, "curl", "curl")
	realtest.LookPath(t, "bash", "bash")
	out := t.TempDir()
	if o, e, code := runCmd(t, "slapos", "render", "--parameters", slaposRequest, "--out", out); code != 0 {
		t.Fatalf("render: %d\n%s\n%s", code, o, e)
	}
	var secrets map[string]any
	b, err := os.ReadFile(filepath.Join(out, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &secrets)
	cfgText, _ := os.ReadFile(filepath.Join(out, "config.toml"))
	cred := regexp.MustCompile(`api-credentials = "admin:([^"]+)"`).FindSubmatch(cfgText)
	if cred == nil {
		t.Fatalf("no api-credentials in config.toml")
	}
	apiPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)

	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	var logb bytes.Buffer
	root.SetOut(&logb)
	root.SetErr(&logb)
	root.SetArgs([]string{"monitor", "--config", filepath.Join(out, "config.toml"),
		"--api-port", fmt.Sprint(apiPort), "--http-port", fmt.Sprint(httpPort), "--monitoring-ticker", "1"})
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
	db := ipv6.HostPort{Host: "::1", Port: 2099}
	script := `set -eu
api=https://127.0.0.1:$API_PORT; http=http://127.0.0.1:$HTTP_PORT
for i in $(seq 100); do curl -sk -o /dev/null "$api/api/status" && break; sleep 0.1; done
token=$(curl -sk -X POST -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$api/api/login" | sed 's/.*"token":"\([^"]*\)".*/\1/')
need() { curl -sg -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$http/api/clusters/cluster1/servers/[::1]/2099/need-start"; }
echo "before $(need)"
echo "start $(curl -sk -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$api/api/clusters/cluster1/servers/$SERVER_ID/actions/start")"
echo "after $(need)"
echo "again $(need)"
curl -sgf -o "$WORK/config.tar.gz" "$http/api/clusters/cluster1/servers/%5B%3A%3A1%5D/2099/config"
mkdir -p "$WORK/partition" && tar -xzf "$WORK/config.tar.gz" -C "$WORK/partition"
echo "untarred"
`
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "API_PORT="+fmt.Sprint(apiPort), "HTTP_PORT="+fmt.Sprint(httpPort),
		"PASSWORD="+string(cred[1]), "SERVER_ID="+topology.ServerIDFor(db), "WORK="+work)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s\ndaemon log:\n%s", err, got, logb.String())
	}
	for _, want := range []string{"before 500", "start 200", "after 200", "again 500", "untarred"} {
		if !strings.Contains(string(got), want) {
			t.Fatalf("script output lacks %q:\n%s\ndaemon log:\n%s", want, got, logb.String())
		}
	}
	// The bundle's paths point into the first database's partition.
	part := filepath.Join(work, "partition")
	mycnf, err := os.ReadFile(filepath.Join(part, "etc", "mysql", "my.cnf"))
	if err != nil {
		t.Fatalf("bundle without etc/mysql/my.cnf: %v", err)
	}
	if _, err := os.Stat(filepath.Join(part, "data", ".system")); err != nil {
		t.Fatalf("bundle without data/.system: %v", err)
	}
	if !strings.Contains(string(mycnf), filepath.Join(out, "")) {
		t.Fatalf("my.cnf does not point into the partitions under %s:\n%s", out, mycnf)
	}
	if strings.Contains(string(got)+logb.String(), string(cred[1])) {
		t.Fatal("the API password was printed")
	}
}
