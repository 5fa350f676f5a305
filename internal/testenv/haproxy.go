package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
)

var haproxyPath = envOr("RMP_HAPROXY", "/usr/sbin/haproxy")

// HAProxy is a running haproxy (foreground, -db) owned by a test.
type HAProxy struct {
	Dir        string // holds haproxy.cfg
	ConfigPath string
	proc       *process
	out        *syncBuffer
}

// RequireHAProxy skips the test under -short, and when haproxy is not installed (a failure
// under CI or RMP_REQUIRE_REAL=1: realtest.Missing).
func RequireHAProxy(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-haproxy test in -short mode")
	}
	realtest.LookPath(t, haproxyPath, "haproxy")
}

// StartHAProxy writes cfg and runs haproxy on it, waiting until it is ready: until every
// waitFor target accepts a connection (a "host:port" TCP address, or an absolute unix
// socket path such as the stats socket). With no waitFor, it waits for the addresses of
// the config's "bind" lines and "stats socket" paths. haproxy is killed when the test ends.
func StartHAProxy(t testing.TB, cfg string, waitFor ...string) *HAProxy {
	t.Helper()
	RequireHAProxy(t)
	dir := ShortTempDir(t)
	h := &HAProxy{Dir: dir, ConfigPath: filepath.Join(dir, "haproxy.cfg"), out: &syncBuffer{}}
	if err := os.WriteFile(h.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("testenv: haproxy: %v", err)
	}
	if len(waitFor) == 0 {
		waitFor = readyTargets(cfg)
	}
	cmd := exec.Command(haproxyPath, "-f", h.ConfigPath, "-db")
	cmd.Stdout, cmd.Stderr = h.out, h.out
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatalf("testenv: haproxy: %v", err)
	}
	h.proc = p
	t.Cleanup(p.kill)
	deadline := time.Now().Add(15 * time.Second)
	for _, target := range waitFor {
		network := "tcp"
		if strings.HasPrefix(target, "/") {
			network = "unix"
		}
		for {
			if p.exited() {
				t.Fatalf("testenv: haproxy exited: %v\n%s", p.err, h.out.String())
			}
			c, err := net.DialTimeout(network, target, 500*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testenv: haproxy not listening on %s: %v\n%s", target, err, h.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return h
}

// Output returns haproxy's stdout and stderr so far.
func (h *HAProxy) Output() string { return h.out.String() }

// Pid returns haproxy's process id.
func (h *HAProxy) Pid() int { return h.proc.cmd.Process.Pid }

// Kill kills haproxy and waits for it (also done at test end).
func (h *HAProxy) Kill() { h.proc.kill() }

// Command sends a command to the runtime API on a stats socket ("show servers state", ...).
func (h *HAProxy) Command(ctx context.Context, socket, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(command + "\n")); err != nil {
		return "", fmt.Errorf("haproxy runtime %s: %w", socket, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(c); err != nil {
		return buf.String(), fmt.Errorf("haproxy runtime %s: %w", socket, err)
	}
	return buf.String(), nil
}

// readyTargets extracts bind addresses and stats sockets from a config.
func readyTargets(cfg string) []string {
	var out []string
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "bind":
			for _, a := range strings.Split(f[1], ",") {
				if t := bindTarget(a); t != "" {
					out = append(out, t)
				}
			}
		case len(f) >= 3 && f[0] == "stats" && f[1] == "socket" && strings.HasPrefix(f[2], "/"):
			out = append(out, f[2])
		}
	}
	return out
}

// bindTarget turns a haproxy bind address (127.0.0.1:80, ::1:80, ipv6@::1:80, :80,
// [::1]:80) into a dialable address, "" when it cannot.
func bindTarget(a string) string {
	if i := strings.Index(a, "@"); i >= 0 {
		a = a[i+1:]
	}
	if strings.HasPrefix(a, "/") {
		return a
	}
	if host, port, err := net.SplitHostPort(a); err == nil {
		if host == "" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, port)
	}
	i := strings.LastIndex(a, ":")
	if i < 0 {
		return ""
	}
	host, port := a[:i], a[i+1:]
	if _, err := strconv.Atoi(port); err != nil {
		return ""
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// TCPWriteConfig renders a minimal haproxy config: a TCP frontend on bind (e.g.
// "127.0.0.1:7000", or "::1:7000" for IPv6) routing to backends ("host:port"); the first
// backend takes the traffic, the others are backups. statsSocket, when not empty, adds an
// admin-level runtime API socket. Servers are named db0, db1, ... in backend "write".
func TCPWriteConfig(bind string, backends []string, statsSocket string) string {
	var b strings.Builder
	b.WriteString("global\n\tmaxconn 256\n")
	if statsSocket != "" {
		fmt.Fprintf(&b, "\tstats socket %s mode 600 level admin\n", statsSocket)
	}
	b.WriteString("defaults\n\tmode tcp\n\ttimeout connect 1s\n\ttimeout client 1h\n\ttimeout server 1h\n")
	fmt.Fprintf(&b, "frontend write\n\tbind %s\n\tdefault_backend write\n", bind)
	b.WriteString("backend write\n")
	for i, be := range backends {
		backup := ""
		if i > 0 {
			backup = " backup"
		}
		fmt.Fprintf(&b, "\tserver db%d %s check inter 500ms fall 2 rise 1%s\n", i, haproxyAddr(be), backup)
	}
	return b.String()
}

// haproxyAddr writes host:port the way haproxy parses it (IPv6 unbracketed, last colon
// separates the port).
func haproxyAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host + ":" + port
}

// syncBuffer is a bytes.Buffer safe for the process's output copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // enough for diagnostics
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
