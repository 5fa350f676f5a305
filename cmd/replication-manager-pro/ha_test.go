package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"replication-manager-pro/ha"
	"replication-manager-pro/internal/testenv"
)

// Three managers (daemon processes) sharing two clusters through a real 3-member etcd.

const haPrefix = "/rmp-ha-test"

type managerProc struct {
	name   string
	config string
	cmd    *exec.Cmd
	out    *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// haConfig writes a manager's configuration: its own ports and data directory, etcd, and
// both clusters in automatic mode.
func haConfig(t testing.TB, name, endpoints string, clusters map[string][]string) string {
	return haConfigPrefix(t, name, endpoints, haPrefix, clusters)
}

func haConfigPrefix(t testing.TB, name, endpoints, prefix string, clusters map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, `[Default]
monitoring-datadir = %q
monitoring-ticker = 0.2
api-bind = "127.0.0.1"
api-port = %d
http-bind-address = "127.0.0.1"
http-port = %d
api-credentials = "admin:%s"
etcd-endpoints = %q
etcd-prefix = %q
etcd-lease-ttl = 2
etcd-manager-name = %q
failover-mode = "automatic"
failover-falsepositive-ping-counter = 3
db-servers-credential = "%s:%s"
replication-credential = "%s:%s"
db-servers-connect-timeout = 1
`, filepath.Join(dir, "data"), testenv.FreePort(t), testenv.FreePort(t), cliAPIPassword, endpoints, prefix, name,
		testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword)
	for _, c := range []string{"c1", "c2"} {
		if len(clusters[c]) > 0 {
			fmt.Fprintf(&b, "\n[%s]\ndb-servers-hosts = %q\n", c, strings.Join(clusters[c], ","))
		}
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startManager runs "monitor" as a child process (killed with the test); in host when
// not nil (a network namespace of testenv.NewNetwork).
func startManager(t testing.TB, name, config string, host ...*testenv.Host) *managerProc {
	t.Helper()
	var h *testenv.Host
	if len(host) > 0 {
		h = host[0]
	}
	return startManagerWith(t, name, config, h, nil)
}

// startManagerEnv is startManager with extra environment variables (KEY=value).
func startManagerEnv(t testing.TB, name, config string, env ...string) *managerProc {
	t.Helper()
	return startManagerWith(t, name, config, nil, env)
}

func startManagerWith(t testing.TB, name, config string, host *testenv.Host, env []string) *managerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChildProcess$", "-test.count=1")
	if host != nil {
		cmd = host.Command(context.Background(), os.Args[0], "-test.run=^TestCLIChildProcess$", "-test.count=1")
	}
	cmd.Env = append(append(os.Environ(), env...), cliChildEnv+"="+strings.Join([]string{"monitor", "--config", config}, "\x1f"))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &managerProc{name: name, config: config, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-m.done
	})
	return m
}

func etcdClient(t testing.TB, endpoints string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(endpoints, ","), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leaderOf reads a cluster's leader from etcd ("" when none).
func leaderOf(t *testing.T, cli *clientv3.Client, cluster string) string {
	return leaderAt(cli, haPrefix, cluster)
}

func leaderAt(cli *clientv3.Client, prefix, cluster string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/clusters/"+cluster+"/leader")
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	var m ha.ManagerInfo
	json.Unmarshal(resp.Kvs[0].Value, &m)
	return m.Name
}

func actionsOf(t *testing.T, cli *clientv3.Client, cluster string) []ha.ActionRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, haPrefix+"/clusters/"+cluster+"/actions/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	var out []ha.ActionRecord
	for _, kv := range resp.Kvs {
		var r ha.ActionRecord
		json.Unmarshal(kv.Value, &r)
		out = append(out, r)
	}
	return out
}

// writableMaster returns the index of the one writable server of a cluster whose other
// live servers replicate from it, or -1.
func writableMaster(t testing.TB, c *testenv.Cluster, dead int) int {
	t.Helper()
	master := -1
	for i, s := range c.Servers {
		if i == dead {
			continue
		}
		if s.QueryString(t, "SELECT @@read_only") == "0" {
			if master >= 0 {
				return -1
			}
			master = i
		}
	}
	if master < 0 {
		return -1
	}
	for i, s := range c.Servers {
		if i == dead || i == master {
			continue
		}
		st := s.SlaveStatus(t)
		if st["Master_Port"] != fmt.Sprint(c.Servers[master].Port()) || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			return -1
		}
	}
	return master
}

func TestThreeManagersOneActsPerCluster(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	c1 := testenv.StartCluster(t, 3)
	c2 := testenv.StartCluster(t, 3)
	hosts := map[string][]string{}
	for name, c := range map[string]*testenv.Cluster{"c1": c1, "c2": c2} {
		for _, s := range c.Servers {
			hosts[name] = append(hosts[name], s.Addr())
		}
	}
	mgrs := map[string]*managerProc{}
	for _, name := range []string{"mgr0", "mgr1", "mgr2"} {
		mgrs[name] = startManager(t, name, haConfig(t, name, e.Endpoints(), hosts))
	}
	cli := etcdClient(t, e.Endpoints())
	deadline := time.Now().Add(30 * time.Second)
	for leaderOf(t, cli, "c1") == "" || leaderOf(t, cli, "c2") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no leaders: c1 %q c2 %q\n%s", leaderOf(t, cli, "c1"), leaderOf(t, cli, "c2"), mgrs["mgr0"].out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The three hold one partition key, one tenant key and one CA per cluster (shared
	// through etcd before monitoring): what one leader handed out, the next recognises.
	for _, f := range []string{filepath.Join("slapos", "partition.key"), filepath.Join("tenants", "tenant.key"),
		filepath.Join("c1", "ca-cert.pem"), filepath.Join("c2", "server-key.pem")} {
		var copies []string
		for _, name := range []string{"mgr0", "mgr1", "mgr2"} {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(mgrs[name].config), "data", f))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			copies = append(copies, string(b))
		}
		if copies[0] == "" || copies[0] != copies[1] || copies[0] != copies[2] {
			t.Fatalf("the managers hold different %s", f)
		}
	}
	// A manager joining with a key of its own is refused before it monitors anything.
	odd := haConfig(t, "mgr3", e.Endpoints(), hosts)
	oddKey := filepath.Join(filepath.Dir(odd), "data", "tenants", "tenant.key")
	os.MkdirAll(filepath.Dir(oddKey), 0o700)
	os.WriteFile(oddKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	m3 := startManager(t, "mgr3", odd)
	select {
	case <-m3.done:
	case <-time.After(20 * time.Second):
		t.Fatal("a manager with its own tenant key started")
	}
	if !strings.Contains(m3.out.String(), oddKey+" differs from the copy the other managers share") {
		t.Fatalf("refusal does not name the file:\n%s", m3.out.String())
	}
	time.Sleep(2 * time.Second) // let the monitors settle (routers, heartbeats) before the faults
	before := actionsOf(t, cli, "c1")

	// Every manager shows the three and who leads what; a standby refuses an action and
	// names the leader.
	out, errs, code := runCmd(t, "client", "managers", "--insecure", "--port", apiPortOf(t, mgrs["mgr0"].config), "--user", "admin", "--password", cliAPIPassword)
	if code != 0 || strings.Count(out, "mgr") < 3 || !strings.Contains(out, "(this one)") || !strings.Contains(out, "c1") || !strings.Contains(out, "c2") {
		t.Fatalf("client managers: exit %d\n%s%s", code, out, errs)
	}
	leader1 := leaderOf(t, cli, "c1")
	standby := "mgr0"
	if leader1 == "mgr0" {
		standby = "mgr1"
	}
	out, errs, code = runCmd(t, "client", "switchover", "--cluster", "c1", "--insecure", "--port", apiPortOf(t, mgrs[standby].config), "--user", "admin", "--password", cliAPIPassword)
	if code == 0 || !strings.Contains(out+errs, "does not lead cluster c1") || !strings.Contains(out+errs, leader1) {
		t.Fatalf("switchover asked of the standby %s: exit %d\n%s%s", standby, code, out, errs)
	}

	// The leader of c1 and c1's master die in the same second.
	dead := leaderOf(t, cli, "c1")
	t.Logf("c1 led by %s, c2 by %s", dead, leaderOf(t, cli, "c2"))
	mgrs[dead].cmd.Process.Kill()
	c1.Master().Kill()
	killed := time.Now()
	var nm int
	for nm = writableMaster(t, c1, 0); nm < 0; nm = writableMaster(t, c1, 0) {
		if time.Since(killed) > 40*time.Second {
			var logs string
			for n, m := range mgrs {
				logs += "--- " + n + "\n" + tail(m.out.String(), 3000)
			}
			t.Fatalf("no new master in c1 40 s after the leader and the master died (leader now %q)\n%s", leaderOf(t, cli, "c1"), logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("c1 has a new master s%d %v after the kills; leader now %s", nm, time.Since(killed).Round(time.Millisecond), leaderOf(t, cli, "c1"))

	// Exactly one manager acted on c1 after the kill: the new leader, not the dead one.
	after := actionsOf(t, cli, "c1")[len(before):]
	actors := map[string]int{}
	for _, r := range after {
		actors[r.Manager]++
	}
	if len(actors) != 1 || actors[dead] > 0 || len(after) < 3 {
		t.Fatalf("actions on c1 after the kill: %+v", after)
	}
	for name := range actors {
		if name != leaderOf(t, cli, "c1") {
			t.Fatalf("%s acted on c1, which %s leads", name, leaderOf(t, cli, "c1"))
		}
	}
	// Nothing happened to c2, and nobody acted on it.
	if got := actionsOf(t, cli, "c2"); len(got) != 0 {
		t.Fatalf("actions on c2: %+v", got)
	}

	// etcd loses its quorum: the managers keep monitoring, take no automatic action, and
	// say so. c2's master dies meanwhile: no failover until etcd answers again.
	e.Members[1].Kill()
	e.Members[2].Kill()
	time.Sleep(2 * time.Second) // the leaders stop acting within half a lease
	c2.Master().Kill()
	stopped := time.Now()
	for time.Since(stopped) < 8*time.Second {
		if writableMaster(t, c2, 0) >= 0 {
			t.Fatalf("c2 failed over without an etcd quorum")
		}
		time.Sleep(200 * time.Millisecond)
	}
	said := false
	for n, m := range mgrs {
		if n != dead && strings.Contains(m.out.String(), "etcd unreachable or without quorum") {
			said = true
		}
	}
	if !said {
		t.Fatal("no live manager says it stopped acting for lack of etcd")
	}
	e.Restart(1)
	e.Restart(2)
	back := time.Now()
	for writableMaster(t, c2, 0) < 0 {
		if time.Since(back) > 40*time.Second {
			t.Fatalf("c2 not failed over 40 s after etcd came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("c2 failed over %v after etcd's quorum came back", time.Since(back).Round(time.Millisecond))
	actors = map[string]int{}
	for _, r := range actionsOf(t, cli, "c2") {
		actors[r.Manager]++
	}
	if len(actors) != 1 {
		t.Fatalf("managers acting on c2: %v", actors)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The leader is cut off from etcd (its network namespace drops everything to the bridge,
// where etcd listens) but still reaches the databases: it stops acting, the standby takes
// over and fails the master over alone, and the old leader does not act when its network
// comes back.
func TestLeaderCutOffFromEtcdStopsActing(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces cut a manager off from etcd")
	n := testenv.NewNetwork(t, 5)
	e := testenv.StartEtcdOn(t, 3, testenv.BridgeIPv4)
	c := testenv.StartCluster(t, 3, testenv.OnHosts(n.Hosts[0], n.Hosts[1], n.Hosts[2]))
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr())
	}
	mgrs := map[string]*managerProc{}
	hostOf := map[string]*testenv.Host{"mgrA": n.Hosts[3], "mgrB": n.Hosts[4]}
	for name, h := range hostOf {
		mgrs[name] = startManager(t, name, haConfig(t, name, e.Endpoints(), map[string][]string{"c1": hosts}), h)
	}
	cli := etcdClient(t, e.Endpoints())
	deadline := time.Now().Add(30 * time.Second)
	for leaderOf(t, cli, "c1") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no leader\n%s", tail(mgrs["mgrA"].out.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cut := leaderOf(t, cli, "c1")
	other := "mgrA"
	if cut == "mgrA" {
		other = "mgrB"
	}
	rules := fmt.Sprintf("table inet rmpetcd {\n\tchain out { type filter hook output priority -300; policy accept; ip daddr %s drop; }\n\tchain in { type filter hook input priority -300; policy accept; ip saddr %s drop; }\n}\n", testenv.BridgeIPv4, testenv.BridgeIPv4)
	f := filepath.Join(t.TempDir(), "etcd.nft")
	os.WriteFile(f, []byte(rules), 0o600)
	if out, err := hostOf[cut].Exec("nft", "-f", f); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	restore := func() { hostOf[cut].Exec("nft", "delete", "table", "inet", "rmpetcd") }
	t.Cleanup(restore)
	cutAt := time.Now()
	for leaderOf(t, cli, "c1") != other {
		if time.Since(cutAt) > 20*time.Second {
			t.Fatalf("%s did not take over from %s", other, cut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s leads %v after %s was cut off from etcd", other, time.Since(cutAt).Round(time.Millisecond), cut)

	// The master dies: only the new leader acts, though the cut one still sees the databases.
	before := len(actionsOf(t, cli, "c1"))
	c.Master().Kill()
	killed := time.Now()
	for writableMaster(t, c, 0) < 0 {
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("no failover by %s\n%s", other, tail(mgrs[other].out.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(mgrs[cut].out.String(), "starting failover") {
		t.Fatalf("the manager cut off from etcd started a failover:\n%s", tail(mgrs[cut].out.String(), 3000))
	}
	restore()
	time.Sleep(4 * time.Second) // its network is back: it must not act on its own
	for _, r := range actionsOf(t, cli, "c1")[before:] {
		if r.Manager != other {
			t.Fatalf("%s acted on c1: %+v", r.Manager, r)
		}
	}
	if strings.Contains(mgrs[cut].out.String(), "starting failover") {
		t.Fatalf("the old leader acted once back:\n%s", tail(mgrs[cut].out.String(), 3000))
	}
}

// BenchmarkHALeaderAndMasterKilled: two manager processes share a 3-node cluster through a
// real 3-member etcd (lease TTL 2 s, 0.2 s ticker, ping counter 3); the leading manager and
// the master are killed (-9) together. It measures from the kills to a replica accepting
// writes with the other replicating from it (writable-p50/max-ms), 10 runs, each on a fresh
// cluster and fresh managers. Figures in docs/benchmarks.md, next to BenchmarkFailover's
// single manager.
func BenchmarkHALeaderAndMasterKilled(b *testing.B) {
	e := testenv.StartEtcd(b, 3)
	var took []time.Duration
	for run := 0; run < 10; run++ {
		c := testenv.StartCluster(b, 3)
		var hosts []string
		for _, s := range c.Servers {
			hosts = append(hosts, s.Addr())
		}
		prefix := fmt.Sprintf("/bench%d", run)
		mgrs := map[string]*managerProc{}
		for _, name := range []string{"mgrA", "mgrB"} {
			cfg := haConfigPrefix(b, name, e.Endpoints(), prefix, map[string][]string{"c1": hosts})
			mgrs[name] = startManager(b, name, cfg)
		}
		cli := etcdClient(b, e.Endpoints())
		leader := ""
		for deadline := time.Now().Add(30 * time.Second); leader == ""; leader = leaderAt(cli, prefix, "c1") {
			if time.Now().After(deadline) {
				b.Fatal("no leader")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		t0 := time.Now()
		mgrs[leader].cmd.Process.Kill()
		c.Master().Kill()
		for writableMaster(b, c, 0) < 0 {
			if time.Since(t0) > 40*time.Second {
				b.Fatalf("run %d: no failover", run)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		for _, m := range mgrs {
			m.cmd.Process.Kill()
			<-m.done
		}
		c.Close()
	}
	sorted := append([]time.Duration(nil), took...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b.ReportMetric(float64(sorted[(len(sorted)-1)/2])/1e6, "writable-p50-ms")
	b.ReportMetric(float64(sorted[len(sorted)-1])/1e6, "writable-max-ms")
	b.Logf("leader and master killed together -> new master writable: %v", took)
}

// apiPortOf reads api-port from a manager's configuration file.
func apiPortOf(t *testing.T, config string) string {
	t.Helper()
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "api-port" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no api-port in %s", config)
	return ""
}

// The leader dies in the middle of a failover, right after the promotion (the crash hook,
// exit 86): the other manager takes the cluster over, finds the plan in etcd's journal and
// finishes it (the remaining replica follows the new master); the steps recorded in etcd
// are the dead leader's up to the promotion, then the new leader's.
func TestLeaderKilledMidFailoverNextLeaderFinishesIt(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	c := testenv.StartCluster(t, 3)
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr())
	}
	// The manager c1 belongs to (rendezvous) leads it: that one carries the crash hook.
	first := "mgrA"
	if ha.Preferred([]string{"mgrA", "mgrB"}, "c1") == "mgrB" {
		first = "mgrB"
	}
	second := map[string]string{"mgrA": "mgrB", "mgrB": "mgrA"}[first]
	crashing := startManagerEnv(t, first, haConfig(t, first, e.Endpoints(), map[string][]string{"c1": hosts}), "RMP_TEST_CRASH_AFTER_STEP=3")
	other := startManager(t, second, haConfig(t, second, e.Endpoints(), map[string][]string{"c1": hosts}))
	cli := etcdClient(t, e.Endpoints())
	for deadline := time.Now().Add(30 * time.Second); leaderOf(t, cli, "c1") != first; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not lead c1 (%q)", first, leaderOf(t, cli, "c1"))
		}
	}
	time.Sleep(time.Second)
	c.Master().Kill()
	select {
	case <-crashing.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the leader did not reach its crash point\n%s", tail(crashing.out.String(), 3000))
	}
	crashed := time.Now()
	var nm int
	for nm = writableMaster(t, c, 0); nm < 0; nm = writableMaster(t, c, 0) {
		if time.Since(crashed) > 30*time.Second {
			t.Fatalf("the failover was not finished by %s\n%s", second, tail(other.out.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s finished the failover %v after %s died", second, time.Since(crashed).Round(time.Millisecond), first)
	// The resume says so once its plan ended, which may be a moment after the new master
	// already takes writes.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(other.out.String(), "resuming failover"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say it resumed the failover:\n%s", second, tail(other.out.String(), 3000))
		}
	}
	recs := actionsOf(t, cli, "c1")
	seen := []string{}
	for _, r := range recs {
		if len(seen) == 0 || seen[len(seen)-1] != r.Manager {
			seen = append(seen, r.Manager)
		}
	}
	if strings.Join(seen, ",") != first+","+second {
		t.Fatalf("actions by %v, want %s then %s: %+v", seen, first, second, recs)
	}
}
