package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"replication-manager-pro/internal/realtest"
)

// Etcd is a cluster of real etcd members (Debian's etcd-server) on loopback, each with its
// own data directory and free ports, killed when the test ends (or when the test binary
// dies: Pdeathsig).
type Etcd struct {
	Members []*EtcdMember
	t       testing.TB
	ip      string
}

// EtcdMember is one etcd process.
type EtcdMember struct {
	Name       string
	ClientURL  string // http://127.0.0.1:port
	PeerURL    string
	dir        string
	args       []string
	proc       *process
	out        *syncBuffer
	clientPort int
}

// RequireEtcd skips the test unless etcd is installed (a failure under CI).
func RequireEtcd(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-etcd test in -short mode")
	}
	return realtest.LookPath(t, "etcd", "etcd-server")
}

// StartEtcd starts an n-member etcd cluster on loopback and waits until it has a leader.
func StartEtcd(t testing.TB, n int) *Etcd { return StartEtcdOn(t, n, "127.0.0.1") }

// StartEtcdOn starts an n-member etcd cluster listening on ip (e.g. BridgeIPv4, so that
// processes in the test network's hosts reach it) and waits until it has a leader.
func StartEtcdOn(t testing.TB, n int, ip string) *Etcd {
	t.Helper()
	bin := RequireEtcd(t)
	e := &Etcd{t: t, ip: ip}
	var initial []string
	for i := 0; i < n; i++ {
		cp, pp := FreePort(t), FreePort(t)
		hp := func(p int) string { return net.JoinHostPort(ip, strconv.Itoa(p)) }
		m := &EtcdMember{Name: "m" + strconv.Itoa(i), ClientURL: "http://" + hp(cp),
			PeerURL: "http://" + hp(pp), dir: filepath.Join(ShortTempDir(t), "etcd"), out: &syncBuffer{}, clientPort: cp}
		initial = append(initial, m.Name+"="+m.PeerURL)
		e.Members = append(e.Members, m)
	}
	for _, m := range e.Members {
		m.args = []string{"--name", m.Name, "--data-dir", m.dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "rmp-test", "--heartbeat-interval", "50", "--election-timeout", "500",
			"--log-level", "error"}
		if err := m.start(bin); err != nil {
			t.Fatalf("testenv: etcd %s: %v", m.Name, err)
		}
		t.Cleanup(m.Kill)
	}
	e.waitHealthy(30 * time.Second)
	return e
}

func (m *EtcdMember) start(bin string) error {
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = m.out, m.out
	p, err := startProcess(cmd)
	if err != nil {
		return err
	}
	m.proc = p
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("exited: %v\n%s", p.err, m.out.String())
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(m.ClientURL, "http://"), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening: %v\n%s", err, m.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Endpoints returns the members' client URLs, comma-separated as etcd-endpoints takes them.
func (e *Etcd) Endpoints() string {
	var out []string
	for _, m := range e.Members {
		out = append(out, m.ClientURL)
	}
	return strings.Join(out, ",")
}

// Kill kills a member (SIGKILL) and waits for it.
func (m *EtcdMember) Kill() {
	if m.proc != nil {
		m.proc.kill()
	}
}

// Restart starts a killed member again on its data directory.
func (e *Etcd) Restart(i int) {
	e.t.Helper()
	m := e.Members[i]
	args := append([]string(nil), m.args...)
	for k := range args {
		if args[k] == "new" && k > 0 && args[k-1] == "--initial-cluster-state" {
			args[k] = "existing"
		}
	}
	m.args = args
	bin, _ := exec.LookPath("etcd")
	if err := m.start(bin); err != nil {
		e.t.Fatalf("testenv: etcd %s restart: %v", m.Name, err)
	}
}

// waitHealthy waits until a linearizable read succeeds (the cluster has a leader).
func (e *Etcd) waitHealthy(within time.Duration) {
	e.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(e.Endpoints(), ","), DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatalf("testenv: etcd client: %v", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "/testenv-health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("testenv: etcd not healthy: %v\n%s", err, e.Members[0].out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
