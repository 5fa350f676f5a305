package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/slaposrelease"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// writeSelfSigned writes a certificate and key for 127.0.0.1 (SlapOS's caucase gives the
// repman partition one, monitoring-ssl-cert/-key).
func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "repman"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.MkdirAll(filepath.Dir(certPath), 0o755)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// slaposRelease is a daemon started as SlapOS's repman software release starts
// replication-manager, on the files its templates write, against two fresh MariaDB.
type slaposRelease struct {
	root              string // the repman partition
	config, clusterD  string
	apiPort, httpPort int
	password          string
	dbs               []*testenv.Server
	log               *lockedBuffer
}

func startSlapOSRelease(t *testing.T) *slaposRelease {
	t.Helper()
	realtest.LookPath(t, "curl", "curl")
	realtest.LookPath(t, "jq", "jq")
	c := testenv.StartCluster(t, 2, testenv.Standalone())
	r := &slaposRelease{root: t.TempDir(), log: &lockedBuffer{}, dbs: c.Servers}
	for _, s := range c.Servers {
		// What SlapOS's mariadb_initial_setup.sql creates on each partition (binlog off).
		for _, h := range []string{"localhost", "%"} {
			s.Exec(t, fmt.Sprintf("CREATE USER IF NOT EXISTS 'heartbeat'@'%s' IDENTIFIED BY '%s'", h, testenv.RootPassword))
			s.Exec(t, fmt.Sprintf("GRANT ALL ON replication_manager_schema.* TO 'heartbeat'@'%s'", h))
		}
	}
	etc := filepath.Join(r.root, "etc", "repman")
	certPath, keyPath := filepath.Join(r.root, "etc", "ssl", "repman-cert.crt"), filepath.Join(r.root, "etc", "ssl", "repman-cert.key")
	writeSelfSigned(t, certPath, keyPath)
	parts := []string{filepath.Join(r.root, "part0"), filepath.Join(r.root, "part1")}
	for _, p := range parts {
		os.MkdirAll(p, 0o755)
	}
	r.password = "Pw4RepmanAdmin12"
	path, err := slaposrelease.Render(etc, map[string]string{
		"ipv4": "127.0.0.1", "password": r.password, "ssl-cert": certPath, "ssl-key": keyPath,
	}, map[string]string{
		"db-list":            c.Servers[0].Addr6() + "," + c.Servers[1].Addr6(),
		"db-prefered-master": c.Servers[0].Addr6(),
		"db-user":            testenv.RootUser, "db-password": testenv.RootPassword,
		"heartbeat-password": testenv.RootPassword,
		"partition-list":     strings.Join(parts, ","),
		"proxysql-partition": filepath.Join(r.root, "proxy", "cluster1"),
		"proxysql-servers":   "127.0.0.1", "proxysql-servers-ipv6": "[::1]",
		"proxy-port": fmt.Sprint(testenv.FreePort(t)), "proxy-admin-port": fmt.Sprint(testenv.FreePort(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.config, r.clusterD = path, filepath.Join(etc, "cluster.d")
	// SlapOS's fixed ports (10005, 10001) are not free on a shared test machine: the
	// environment gives others, [Default] keys as replication-manager read them.
	r.apiPort, r.httpPort = testenv.FreePort(t), testenv.FreePort(t)
	t.Setenv("DEFAULT_API_PORT", fmt.Sprint(r.apiPort))
	t.Setenv("DEFAULT_HTTP_PORT", fmt.Sprint(r.httpPort))
	t.Setenv("DEFAULT_MONITORING_TICKER", "0.5")

	// SlapOS's wrapper: flags before the command.
	srv := filepath.Join(r.root, "srv", "repman")
	args := []string{
		"--monitoring-basedir=" + srv,
		"--monitoring-sharedir=" + filepath.Join(srv, "share"),
		"--http-root=" + filepath.Join(srv, "dashboard"),
		"--monitoring-datadir=" + filepath.Join(r.root, "var", "lib"),
		"--config=" + r.config,
		"--log-file=" + filepath.Join(r.root, "var", "log", "repman.log"),
		"--memprofile=" + filepath.Join(r.root, "tmp", "repmgr.mprof"),
		"monitor",
	}
	os.MkdirAll(filepath.Join(r.root, "var", "log"), 0o755)
	os.MkdirAll(filepath.Join(r.root, "tmp"), 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(r.log)
	root.SetErr(r.log)
	root.SetArgs(commandFirst(root, args))
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
	return r
}

// script runs bash with curl and jq against the daemon: $API (https), $HTTP, $PASSWORD.
func (r *slaposRelease) script(t *testing.T, body string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -u\nAPI=https://127.0.0.1:$API_PORT; HTTP=http://127.0.0.1:$HTTP_PORT\n"+
		"curl() { command curl -k --silent -H 'Accept: application/json' \"$@\"; }\n"+
		"for i in $(seq 200); do command curl -sk -o /dev/null \"$API/api/status\" && break; sleep 0.1; done\n"+
		"get_token() { curl -s -X POST --data \"{\\\"username\\\":\\\"admin\\\",\\\"password\\\":\\\"$PASSWORD\\\"}\" \"$API/api/login\"; }\n"+
		body)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("API_PORT=%d", r.apiPort), fmt.Sprintf("HTTP_PORT=%d", r.httpPort),
		"PASSWORD="+r.password), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s\ndaemon log:\n%s", err, out, r.log.String())
	}
	return string(out)
}

// TestSlapOSReleaseDropIn runs the daemon exactly as SlapOS's repman software release runs
// replication-manager (its wrapper's command line, the files its templates write) on two
// fresh MariaDB, and does what its scripts and test.py do, with curl and jq: log in, add
// the cluster, reload it, wait for the databases, clean up and bootstrap replication,
// switch the heartbeat with the misspelt name, check alerts, list clusters and status, let
// the database partition learn it must start and download its bundle anonymously, poll the
// proxy's need-start and need-stop. Then the files are where replication-manager writes
// them, and a reload re-reads the files.
func TestSlapOSReleaseDropIn(t *testing.T) {
	r := startSlapOSRelease(t)
	master := ipv6.HostPort{Host: "::1", Port: r.dbs[0].Port()}
	out := r.script(t, `
TOKEN=$(get_token | jq -r '.token')
echo "token ${#TOKEN}"
echo "exists $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1)"
echo "reload $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/settings/actions/reload)"
echo "waitdatabases $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/actions/waitdatabases)"
echo "cleanup $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/actions/replication/cleanup)"
echo "bootstrap $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/actions/replication/bootstrap/master-slave)"
echo "heartbeat $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/settings/actions/switch/database-hearbeat)"
for i in $(seq 100); do
  st=$(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/status)
  [ "$st" = '{"alive":"running"}' ] && break; sleep 0.2
done
echo "status $st"
echo "errors $(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/topology/alerts | jq -r '.errors')"
echo "clusters $(curl -H "Authorization: Bearer $TOKEN" "$API/api/clusters?query=%7B%22method%22:%22GET%22%7D" | jq -r '.[0].name, (.[0].isFailable|tostring), (.[0].isDown|tostring)' | tr '\n' ' ')"
echo "start $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' -X POST $API/api/clusters/cluster1/servers/$MASTER_ID/actions/start)"
# mysqld-need-start.sh: the admin's token, the partition's [IPv6] host and port
echo "need-start $(curl -g -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' "$API/api/clusters/cluster1/servers/[::1]/$MASTER_PORT/need-start")"
echo "need-start again $(curl -g -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' "$API/api/clusters/cluster1/servers/[::1]/$MASTER_PORT/need-start")"
# mysql-get-config: anonymous, over plain HTTP
mkdir -p "$WORK/config" && cd "$WORK/config"
command curl -g -s -o config.tar.gz -w 'config %{http_code}\n' "$HTTP/api/clusters/cluster1/servers/[::1]/$MASTER_PORT/config"
tar -xzf config.tar.gz && test -d data/.system && test -f etc/mysql/my.cnf && echo "untarred"
# proxy-need-start-stop.sh: anonymous, the ProxySQL's IPv4 and admin port
echo "proxy need-start $(command curl -k -s -o /dev/null -w '%{http_code}' $HTTP/api/clusters/cluster1/servers/127.0.0.1/$PROXY_ADMIN/need-start)"
echo "proxy need-stop $(command curl -k -s -o /dev/null -w '%{http_code}' $HTTP/api/clusters/cluster1/servers/127.0.0.1/$PROXY_ADMIN/need-stop)"
`, "MASTER_ID="+topology.ServerIDFor(master), fmt.Sprintf("MASTER_PORT=%d", master.Port), "WORK="+r.root,
		"PROXY_ADMIN="+proxyAdminPort(t, r))
	if !regexp.MustCompile(`token [1-9][0-9]+\n`).MatchString(out) {
		t.Fatalf("no token:\n%s\ndaemon log:\n%s", out, r.log.String())
	}
	for _, want := range []string{"exists 200", "reload 200", "waitdatabases 200", "cleanup 200", "bootstrap 200",
		"heartbeat 200", `status {"alive":"running"}`, "errors null", "clusters cluster1 true false", "start 200",
		"need-start 200", "need-start again 500", "config 200", "untarred", "proxy need-start 500", "proxy need-stop 500"} {
		if !strings.Contains(out, want) {
			t.Fatalf("script output lacks %q:\n%s\ndaemon log:\n%s", want, out, r.log.String())
		}
	}
	// SlapOS's dbjobs logs in with the anonymous bundle's dbjob.cnf (the job account, not the
	// manager's): the manager made that account on both databases, the read-only replica
	// too, and it can take a job row there.
	jobCnf := filepath.Join(r.root, "config", "etc", "mysql", "dbjob.cnf")
	if b, err := os.ReadFile(jobCnf); err != nil || strings.Contains(string(b), testenv.RootPassword) {
		t.Fatalf("dbjob.cnf: %v\n%s", err, b)
	}
	client := realtest.LookPath(t, "mariadb", "mariadb-client")
	for _, s := range r.dbs {
		var out []byte
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, err = exec.Command(client, "--defaults-file="+jobCnf, "--socket="+filepath.Join(s.Dir(), "sock"), "-N", "-e",
				"UPDATE replication_manager_schema.jobs SET state=state; SELECT CURRENT_USER(), @@read_only").CombinedOutput()
			if err == nil {
				break
			}
		}
		if err != nil || !strings.Contains(string(out), "repman_job@localhost") {
			t.Fatalf("the job account of the anonymous bundle on %s: %v %s\ndaemon log:\n%s", s.Addr(), err, out, r.log.String())
		}
		t.Logf("job account on %s: %s", s.Addr(), strings.TrimSpace(string(out)))
	}
	// The ProxySQL does not run here: after failover-falsepositive-ping-counter failed
	// checks it is Failed and its start is asked through the slapos orchestrator, which the
	// root partition's cron script learns from need-start.
	out = r.script(t, `
TOKEN=$(get_token | jq -r '.token')
for i in $(seq 150); do
  code=$(command curl -s -o /dev/null -w '%{http_code}' $HTTP/api/clusters/cluster1/servers/127.0.0.1/$PROXY_ADMIN/need-start)
  [ "$code" = 200 ] && break; sleep 0.2
done
echo "proxy restart $code"
echo "proxies $(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/topology/proxies | jq -r '.[0].type + " " + .[0].state + " " + .[0].id')"
ID=$(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/topology/proxies | jq -r '.[0].id')
echo "proxy start action $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' -X POST $API/api/clusters/cluster1/proxies/$ID/actions/start)"
echo "proxy need-start after action $(command curl -s -o /dev/null -w '%{http_code}' $HTTP/api/clusters/cluster1/servers/127.0.0.1/$PROXY_ADMIN/need-start)"
`, "PROXY_ADMIN="+proxyAdminPort(t, r))
	for _, want := range []string{"proxy restart 200", "proxies proxysql Failed px", "proxy start action 200", "proxy need-start after action 200"} {
		if !strings.Contains(out, want) {
			t.Fatalf("script output lacks %q:\n%s\ndaemon log:\n%s", want, out, r.log.String())
		}
	}
	// The heartbeat SlapOS's files turn on (test-inject-traffic, written with
	// monitoring-write-heartbeat-credential) reaches the replica; the misspelt switch left
	// it on.
	replica := r.dbs[1]
	first := waitHeartbeat(t, r, replica, "")
	waitHeartbeat(t, r, replica, first) // and it keeps changing
	// The API shows the replicas' lag measured by that heartbeat.
	lag := r.script(t, `TOKEN=$(get_token | jq -r '.token')
echo "heartbeat lag $(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/topology/servers | jq '[.[] | select(.heartbeatLagSeconds != null)] | length')"
`)
	if !regexp.MustCompile(`heartbeat lag [1-9]`).MatchString(lag) {
		t.Errorf("no replica shows its heartbeat lag in the API: %q", lag)
	}
	// Where replication-manager writes: the working directory is <monitoring-basedir>/data.
	work := filepath.Join(r.root, "srv", "repman", "data")
	if _, err := os.Stat(filepath.Join(work, "cluster1", "[::1]_"+fmt.Sprint(master.Port))); err != nil {
		t.Errorf("no node directory under %s: %v", work, err)
	}
	// A reload re-reads the files; a switch is saved where replication-manager saves it.
	clusterFile := filepath.Join(r.clusterD, "config-cluster1.toml")
	b, _ := os.ReadFile(clusterFile)
	os.WriteFile(clusterFile, []byte(strings.Replace(string(b), "failover-limit = 5", "failover-limit = 3", 1)), 0o600)
	out = r.script(t, `
TOKEN=$(get_token | jq -r '.token')
echo "reload $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/settings/actions/reload)"
echo "failover-limit $(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1/settings | jq -r '."failover-limit"')"
echo "switch $(curl -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' $API/api/clusters/cluster1/settings/actions/switch/database-heartbeat)"
echo "workingDir $(curl -H "Authorization: Bearer $TOKEN" $API/api/clusters/cluster1 | jq -r '.workingDir')"
`)
	for _, want := range []string{"reload 200", "failover-limit 3", "switch 200", "workingDir " + filepath.Join(work, "cluster1")} {
		if !strings.Contains(out, want) {
			t.Fatalf("script output lacks %q:\n%s\ndaemon log:\n%s", want, out, r.log.String())
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, "cluster1", "cluster1.toml")); err != nil || !strings.Contains(string(b), "test-inject-traffic = false") {
		t.Errorf("saved settings: %v\n%s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(r.root, "var", "log", "repman.log")); err != nil || !strings.Contains(string(b), "monitoring started") {
		t.Errorf("log-file: %v\n%s", err, b)
	}
	if !strings.Contains(r.log.String(), "accepted, no effect yet: ") || !strings.Contains(r.log.String(), "backup-mysqldump-options") {
		t.Errorf("no start warning naming the keys without effect:\n%s", r.log.String())
	}
	for _, secret := range []string{r.password, testenv.RootPassword} {
		if strings.Contains(r.log.String(), secret) || strings.Contains(out, secret) {
			t.Fatal("a secret was printed")
		}
	}
}

// proxyAdminPort reads the ProxySQL admin port the cluster file was rendered with.
func proxyAdminPort(t *testing.T, r *slaposRelease) string {
	b, err := os.ReadFile(filepath.Join(r.clusterD, "config-cluster1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "proxysql-admin-port = "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no proxysql-admin-port")
	return ""
}

// waitHeartbeat waits until the replica shows a heartbeat other than not, and returns it.
func waitHeartbeat(t *testing.T, r *slaposRelease, s *testenv.Server, not string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.QueryString(t, "SELECT IFNULL((SELECT table_name FROM information_schema.views WHERE table_schema='replication_manager_schema' AND table_name='pseudo_gtid_v'), '')")
		if got != "" {
			if tok := s.QueryString(t, "SELECT * FROM replication_manager_schema.pseudo_gtid_v"); tok != not {
				return tok
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s: no new heartbeat (last %q)\ndaemon log:\n%s", s.Addr(), not, r.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
