package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// writeClusterConfig writes a repman config for a test cluster and returns its path.
func writeClusterConfig(t *testing.T, hosts []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	body := fmt.Sprintf(`[Default]
monitoring-datadir = %q
api-port = `+fmt.Sprint(testenv.FreePort(t))+`
http-port = `+fmt.Sprint(testenv.FreePort(t))+`

[c1]
db-servers-hosts = %q
db-servers-prefered-master = %q
db-servers-credential = "%s:%s"
replication-credential = "%s:%s"
db-servers-connect-timeout = 1
failover-falsepositive-ping-counter = 3
`, t.TempDir(), strings.Join(hosts, ","), hosts[0], testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDiscoverRealCluster(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicateOverIPv6())
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr6())
	}
	cfg := writeClusterConfig(t, hosts)
	out, errs, code := runCmd(t, "discover", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, "cluster c1: topology master-slave, master "+hosts[0]) {
		t.Fatalf("no master line:\n%s", out)
	}
	for i, h := range hosts {
		want := "Slave"
		if i == 0 {
			want = "Master"
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 7 && f[0] == h && f[1] == want {
				found = true
				if i > 0 && (f[3] != hosts[0] || f[6] != "true") {
					t.Errorf("replica row %q: want source %s and read_only true", line, hosts[0])
				}
			}
		}
		if !found {
			t.Errorf("no %s row for %s in:\n%s", want, h, out)
		}
	}
	if strings.Contains(out+errs, testenv.RootPassword) {
		t.Fatal("password printed")
	}

	out, _, code = runCmd(t, "discover", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var snaps []topology.Snapshot
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(snaps) != 1 || snaps[0].Master != 0 || snaps[0].Servers[1].State != topology.StateSlave {
		t.Fatalf("json snapshot: %+v", snaps)
	}
	want, _ := ipv6.ParseHostPort(hosts[0], 3306)
	if snaps[0].Servers[0].Addr != want {
		t.Fatalf("json addr %v, want %v", snaps[0].Servers[0].Addr, want)
	}
}

func TestDiscoverUnreachableHosts(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	dead := []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("[::1]:%d", testenv.FreePort(t))}
	cfg := writeClusterConfig(t, []string{c.Servers[0].Addr(), c.Servers[1].Addr(), dead[0], dead[1]})
	out, errs, code := runCmd(t, "discover", "--config", cfg)
	if code == 0 {
		t.Fatalf("exit 0 with unreachable hosts\n%s", out)
	}
	for _, d := range dead {
		if !strings.Contains(errs, d+" unreachable") {
			t.Errorf("stderr does not name %s:\n%s", d, errs)
		}
	}
	if strings.Contains(errs, c.Servers[0].Addr()+" unreachable") {
		t.Errorf("a live server reported unreachable:\n%s", errs)
	}
}

func TestDiscoverBadConfigExits1(t *testing.T) {
	_, errs, code := runCmd(t, "discover", "--config", "../../config/testdata/typo/config.toml")
	if code != 1 || !strings.Contains(errs, "failover-limt") {
		t.Fatalf("exit %d stderr %s", code, errs)
	}
}
