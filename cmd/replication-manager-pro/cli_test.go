package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/api"
	"replication-manager-pro/internal/testenv"
)

const cliAPIPassword = "cli-api-pw"

// writeDaemonConfig writes the configuration of a daemon on a real cluster, with the API on
// free ports, and returns its path, its monitoring-datadir and the API port.
func writeDaemonConfig(t *testing.T, hosts []string) (path, datadir string, apiPort int) {
	t.Helper()
	dir := t.TempDir()
	datadir = filepath.Join(dir, "data")
	apiPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	body := fmt.Sprintf(`[Default]
monitoring-datadir = %q
monitoring-ticker = 0.2
api-bind = "127.0.0.1"
api-port = %d
http-bind-address = "127.0.0.1"
http-port = %d
api-credentials = "admin:%s"

[c1]
db-servers-hosts = %q
db-servers-credential = "%s:%s"
replication-credential = "%s:%s"
db-servers-connect-timeout = 1
`, datadir, apiPort, httpPort, cliAPIPassword, strings.Join(hosts, ","), testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword)
	path = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, datadir, apiPort
}

// startDaemon runs "monitor" on a real cluster with the API on free ports and returns the
// API port and the monitoring-datadir; the daemon stops at the end of the test.
func startDaemon(t *testing.T, hosts []string) (int, string) {
	t.Helper()
	path, datadir, apiPort := writeDaemonConfig(t, hosts)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"monitor", "--config", path})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	// Wait for the API and a failable cluster.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := hc.Get("https://127.0.0.1:" + strconv.Itoa(apiPort) + "/api/clusters/c1/status")
		if err == nil {
			var st map[string]string
			json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if st["alive"] == "running" {
				return apiPort, datadir
			}
		}
		select {
		case err := <-done:
			t.Fatalf("daemon ended: %v\n%s", err, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not running; log:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClientCommandsAgainstRealDaemon(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr(), c.Servers[2].Addr()}
	port, datadir := startDaemon(t, hosts)
	certPath, _ := api.GeneratedCertPaths(datadir)
	conn := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--user", "admin", "--password", cliAPIPassword}
	client := func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, append(append([]string{"client"}, args...), conn...)...)
	}

	// Secure by default: the self-signed certificate is refused unless trusted.
	if _, errs, code := client("status"); code != 1 || !strings.Contains(errs, "certificate") {
		t.Fatalf("status without --cert/--insecure: exit %d %q", code, errs)
	}
	if out, errs, code := client("status", "--cert", certPath); code != 0 || out != "running\n" {
		t.Fatalf("status --cert: exit %d %q %q", code, out, errs)
	}
	if out, errs, code := client("status", "--insecure", "--with-errors"); code != 0 || strings.Contains(out, "ERROR") || !strings.HasPrefix(out, "running\n") {
		t.Fatalf("status --with-errors: exit %d %q %q", code, out, errs)
	}
	if out, _, code := client("status", "--insecure", "--cluster", "c1", "--json"); code != 0 || strings.TrimSpace(out) != `{"alive":"running"}` {
		t.Fatalf("status --json: exit %d %q", code, out)
	}
	// The password may come from the environment.
	t.Setenv(passwordEnv, cliAPIPassword)
	if _, errs, code := runCmd(t, "client", "status", "--insecure", "--port", strconv.Itoa(port)); code != 0 {
		t.Fatalf("password from $%s: exit %d %q", passwordEnv, code, errs)
	}
	if _, errs, code := runCmd(t, "client", "status", "--insecure", "--port", strconv.Itoa(port), "--password", "wrong"); code != 1 || !strings.Contains(errs, "Invalid credentials") {
		t.Fatalf("wrong password: exit %d %q", code, errs)
	}

	out, errs, code := client("topology", "--insecure")
	if code != 0 {
		t.Fatalf("topology: exit %d %q", code, errs)
	}
	for i, h := range hosts {
		want := "Slave"
		if i == 0 {
			want = "Master"
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, h) && strings.Contains(line, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("topology lacks %s %s:\n%s", h, want, out)
		}
	}
	if out, _, code := client("topology", "--insecure", "--json"); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("topology --json: exit %d %q", code, out)
	}

	// Failover of a live master is refused: exit 1 with the reason.
	out, errs, code = client("failover", "--insecure")
	if code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("failover of a live master: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = client("switchover", "--insecure", "--prefered", hosts[2])
	if code != 0 || !strings.Contains(out, "switchover from "+hosts[0]+" to "+hosts[2]) || !strings.Contains(out, "switchover done") {
		t.Fatalf("switchover: exit %d\n%s\n%s", code, out, errs)
	}
	if _, errs, code := client("switchover", "--insecure", "--prefered", "10.1.1.1:3306"); code != 1 || !strings.Contains(errs, "not in db-servers-hosts") {
		t.Fatalf("switchover to a foreign host: exit %d %q", code, errs)
	}

	// api --url, path or full URL.
	if out, _, code := client("api", "--insecure", "--url", "/api/clusters/c1/topology/master"); code != 0 || !strings.Contains(out, `"url":"`+hosts[2]+`"`) {
		t.Fatalf("api master after switchover: exit %d %q", code, out)
	}
	if out, _, code := client("api", "--insecure", "--url", "https://127.0.0.1:"+strconv.Itoa(port)+"/api/clusters"); code != 0 || !strings.HasPrefix(out, "[") {
		t.Fatalf("api full url: exit %d %q", code, out)
	}
	if _, _, code := client("api", "--insecure", "--url", "/api/clusters/nope"); code != 1 {
		t.Fatalf("api on an unknown cluster: exit %d", code)
	}
}
