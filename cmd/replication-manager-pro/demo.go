package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/haproxy"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/proxysql"
)

// demoMarker marks a directory the demo created, so it only ever removes its own.
const demoMarker = ".replication-manager-pro-demo"

// demoEnv is a running demo: three MariaDB servers, a proxy (ProxySQL when its binary is
// found, HAProxy otherwise) and the daemon.
type demoEnv struct {
	Dir                 string
	HTTPPort, APIPort   int
	WritePort, ReadPort int // HAProxy's
	AdminPassword       string
	AppPassword         string
	Hosts               []string
	// Proxy is "proxysql" or "haproxy". With ProxySQL, clients use ProxySQLPort on
	// 127.0.0.1 and [::1] (writes to the master, plain SELECTs to the replicas).
	Proxy                           string
	ProxySQLPort, ProxySQLAdminPort int
	// CAPath is the cluster CA: the servers and ProxySQL serve TLS with certificates it
	// signed (tag ssl), for 127.0.0.1, ::1 and localhost.
	CAPath string

	dbs    []*dbproc.Process
	proxy  *exec.Cmd
	pxDone chan struct{}
	cancel context.CancelFunc
	daemon chan error
}

// demoOptions choose the demo's proxy: "auto" (ProxySQL when findProxySQL finds it,
// HAProxy otherwise), "proxysql" or "haproxy".
type demoOptions struct {
	Proxy string
}

// findProxySQL finds the proxysql binary as the tests do: $PROXYSQL_BIN, else
// ../shared/tools/proxysql/proxysql beside the repository (from the working directory, as
// make demo runs from the repository's root, or from bin/'s parent), else proxysql in
// PATH. ProxySQL has no Debian package.
func findProxySQL() (string, error) {
	if p := os.Getenv("PROXYSQL_BIN"); p != "" {
		return exec.LookPath(p)
	}
	const shared = "../shared/tools/proxysql/proxysql"
	candidates := []string{shared}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", shared))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return filepath.Abs(c)
		}
	}
	return exec.LookPath("proxysql")
}

func secret() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// prepareDemoDir makes dir an empty demo directory: absent or empty, or an older demo
// (marked), never anything else.
func prepareDemoDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
			return "", fmt.Errorf("%s exists and was not made by the demo: choose another --dir", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, demoMarker), nil, 0o640)
}

// startDemo builds the demo in dir (prepared by prepareDemoDir), with ProxySQL in front
// when its binary is found, and returns once the cluster is bootstrapped and monitored.
// log receives the daemon's log.
func startDemo(ctx context.Context, dir string, log io.Writer) (*demoEnv, error) {
	return startDemoWith(ctx, dir, log, demoOptions{Proxy: "auto"})
}

func startDemoWith(ctx context.Context, dir string, log io.Writer, opt demoOptions) (*demoEnv, error) {
	var err error
	e := &demoEnv{Dir: dir, AdminPassword: secret(), AppPassword: secret()}
	var proxysqlBin string
	switch opt.Proxy {
	case "", "auto":
		if proxysqlBin, err = findProxySQL(); err == nil {
			e.Proxy = "proxysql"
		} else {
			e.Proxy = "haproxy"
		}
	case "proxysql":
		if proxysqlBin, err = findProxySQL(); err != nil {
			return nil, fmt.Errorf("proxysql not found (set PROXYSQL_BIN, or put it in PATH or ../shared/tools/proxysql/): %w", err)
		}
		e.Proxy = "proxysql"
	case "haproxy":
		e.Proxy = "haproxy"
	default:
		return nil, fmt.Errorf("--proxy %q: want auto, proxysql or haproxy", opt.Proxy)
	}
	ok := false
	defer func() {
		if !ok {
			e.Stop()
		}
	}()
	ports := make([]int, 11)
	for i := range ports {
		if ports[i], err = dbproc.FreePort(); err != nil {
			return nil, err
		}
	}
	e.HTTPPort, e.APIPort, e.WritePort, e.ReadPort = ports[3], ports[4], ports[5], ports[6]
	e.ProxySQLPort, e.ProxySQLAdminPort = ports[9], ports[10]
	rootPW, replPW := secret(), secret()
	accounts := []dbproc.Account{
		{User: "root", Host: "localhost", Password: rootPW},
		{User: "root", Host: "%", Password: rootPW, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
		{User: "repl", Host: "%", Password: replPW, Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"},
		{User: "app", Host: "%", Password: e.AppPassword, Grants: "ALL PRIVILEGES ON demo.*"},
	}

	// TLS (tag ssl): the cluster's certificates where the daemon keeps them
	// (<monitoring-datadir>/<cluster>/), for the servers and the proxy, so that REQUIRE SSL
	// accounts (tenant databases) can connect and clients can verify the cluster CA.
	certDir := filepath.Join(dir, "rmp", "demo")
	tlsFiles, err := configurator.ClusterTLS(certDir, "demo", []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return nil, err
	}
	e.CAPath = filepath.Join(certDir, "ca-cert.pem")
	dbArgs := append(append([]string(nil), dbproc.SmallFootprint...), configurator.ServerTLSArgs(certDir)...)

	// Three servers, bootstrapped and started in parallel.
	e.dbs = make([]*dbproc.Process, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		e.Hosts = append(e.Hosts, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			db := dbproc.DB{Dir: filepath.Join(dir, fmt.Sprintf("db%d", i+1)), Port: ports[i], ServerID: i + 1, Args: dbArgs}
			if errs[i] = dbproc.Bootstrap(ctx, db.DataDir(), dbproc.SmallFootprint, accounts); errs[i] != nil {
				return
			}
			e.dbs[i], errs[i] = dbproc.Start(ctx, db)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	cfgPath := filepath.Join(dir, "config.toml")
	cfgText := fmt.Sprintf(`# The demo's configuration, written by replication-manager-pro demo.
[Default]
monitoring-datadir = %q
monitoring-ticker = 1
api-bind = "127.0.0.1"
api-port = %d
http-bind-address = "127.0.0.1"
http-port = %d
api-https-bind = false
api-credentials = "admin:%s"

[demo]
db-servers-hosts = %q
db-servers-prefered-master = %q
db-servers-credential = "root:%s"
replication-credential = "repl:%s"
db-servers-connect-timeout = 1
failover-mode = "automatic"
failover-falsepositive-ping-counter = 3
force-slave-heartbeat-time = 1
force-slave-heartbeat-retry = 1
prov-db-tags = "innodb,ssl"
`, filepath.Join(dir, "rmp"), e.APIPort, e.HTTPPort, e.AdminPassword, strings.Join(e.Hosts, ","), e.Hosts[0],
		rootPW, replPW)
	proxysqlPW := secret()
	if e.Proxy == "proxysql" {
		cfgText += fmt.Sprintf(`proxysql = true
proxysql-servers = "127.0.0.1"
proxysql-servers-ipv6 = "[::1]"
proxysql-port = %d
proxysql-admin-port = %d
proxysql-user = "rmp-admin"
proxysql-password = %q
proxysql-bootstrap = true
proxysql-bootstrap-hostgroups = true
prov-proxy-tags = "masterslave,readwritesplit,ssl"
`, e.ProxySQLPort, e.ProxySQLAdminPort, proxysqlPW)
	} else {
		cfgText += fmt.Sprintf(`haproxy = true
haproxy-servers = "127.0.0.1"
haproxy-ip-write-bind = "127.0.0.1"
haproxy-ip-read-bind = "127.0.0.1"
haproxy-servers-ipv6 = "[::1]"
haproxy-write-port = %d
haproxy-read-port = %d
haproxy-stat-port = %d
haproxy-api-port = %d
`, e.WritePort, e.ReadPort, ports[7], ports[8])
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}

	if e.Proxy == "proxysql" {
		if err := e.startProxySQL(ctx, proxysqlBin, &cfg.Clusters[0].Settings, tlsFiles); err != nil {
			return nil, err
		}
	} else if err := e.startHAProxy(ctx, &cfg.Clusters[0]); err != nil {
		return nil, err
	}

	// The daemon, as `replication-manager-pro monitor` runs it.
	dctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.daemon = make(chan error, 1)
	root := newRootCmd()
	root.SetOut(log)
	root.SetErr(log)
	root.SetArgs([]string{"monitor", "--config", cfgPath})
	go func() { e.daemon <- root.ExecuteContext(dctx) }()

	// Bootstrap replication through the API, as SlapOS's repman-manager.sh does.
	base := fmt.Sprintf("http://127.0.0.1:%d", e.HTTPPort)
	if err := waitFor(ctx, 20*time.Second, func() bool { r, err := http.Get(base + "/api/status"); return err == nil && r.Body.Close() == nil }); err != nil {
		return nil, errors.New("the daemon's API did not come up")
	}
	token, err := demoLogin(base, e.AdminPassword)
	if err != nil {
		return nil, err
	}
	if _, err := demoPost(base+"/api/clusters/demo/actions/replication/bootstrap/master-slave", token); err != nil {
		return nil, fmt.Errorf("replication bootstrap: %w", err)
	}
	// The application's database, created on the master so that it replicates.
	if err := demoSQL(ctx, e.Hosts[0], rootPW, "CREATE DATABASE IF NOT EXISTS demo"); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		b, err := demoPost(base+"/api/clusters/demo/status", "")
		return err == nil && strings.Contains(b, "running")
	}); err != nil {
		return nil, errors.New("the cluster did not become healthy")
	}
	ok = true
	return e, nil
}

// startHAProxy puts HAProxy in front, from the generated configuration.
func (e *demoEnv) startHAProxy(ctx context.Context, c *config.Cluster) error {
	hs, err := haproxy.SettingsFrom(c, 0)
	if err != nil {
		return err
	}
	hcfg, err := haproxy.Config(hs, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(hs.WorkDir, 0o750); err != nil {
		return err
	}
	hpath := filepath.Join(hs.WorkDir, "haproxy.cfg")
	if err := os.WriteFile(hpath, []byte(hcfg), 0o640); err != nil {
		return err
	}
	cmd := exec.Command("haproxy", "-f", hpath, "-db")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.startProxy(cmd); err != nil {
		return fmt.Errorf("haproxy (Debian package haproxy): %w", err)
	}
	if err := waitFor(ctx, 10*time.Second, func() bool { _, err := os.Stat(hs.Socket()); return err == nil }); err != nil {
		return fmt.Errorf("haproxy did not start: %s", out.String())
	}
	return nil
}

// startProxySQL puts ProxySQL in front, started as SlapOS starts it (-f -c cnf -D datadir)
// on the proxysql.cnf generated from the demo's settings, bound on 127.0.0.1 and [::1].
// The admin password is in the cnf (mode 0600), never on the command line. The daemon
// bootstraps its hostgroups, servers and users.
func (e *demoEnv) startProxySQL(ctx context.Context, bin string, s *config.Settings, tlsFiles *configurator.TLSFiles) error {
	p, err := proxysql.ConfigParamsFromSettings(s, 0)
	if err != nil {
		return err
	}
	dir := filepath.Join(e.Dir, "proxysql")
	p.Datadir, p.BindIPv4 = filepath.Join(dir, "data"), "127.0.0.1"
	p.SSLDir = filepath.Join(dir, "ssl")
	cnf, err := proxysql.GenerateConfig(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.Datadir, 0o750); err != nil {
		return err
	}
	// Tag ssl: backend TLS with the cluster CA and client certificate (ssl_p2s_*), frontend
	// TLS with the cluster's server certificate (ProxySQL reads <datadir>/proxysql-*.pem).
	if err := os.MkdirAll(p.SSLDir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		filepath.Join(p.SSLDir, proxysql.CAFile): tlsFiles.CA, filepath.Join(p.SSLDir, "client-cert.pem"): tlsFiles.ClientCert,
		filepath.Join(p.SSLDir, "client-key.pem"): tlsFiles.ClientKey, filepath.Join(p.Datadir, "proxysql-ca.pem"): tlsFiles.CA,
		filepath.Join(p.Datadir, "proxysql-cert.pem"): tlsFiles.ServerCert, filepath.Join(p.Datadir, "proxysql-key.pem"): tlsFiles.ServerKey,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return err
		}
	}
	cnfPath := filepath.Join(dir, "proxysql.cnf")
	if err := os.WriteFile(cnfPath, cnf, 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "proxysql.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "-f", "-c", cnfPath, "-D", p.Datadir)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := e.startProxy(cmd); err != nil {
		return fmt.Errorf("proxysql %s: %w", bin, err)
	}
	admin, err := proxysql.OpenAdmin(proxysql.AdminConfig{Addr: ipv6.HostPort{Host: "::1", Port: p.AdminPort}, User: p.AdminUser, Password: p.AdminPassword, ConnectTimeout: time.Second})
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := waitFor(ctx, 30*time.Second, func() bool {
		select {
		case <-e.pxDone:
			return true
		default:
		}
		return admin.Ping(ctx) == nil
	}); err != nil {
		return fmt.Errorf("proxysql did not start: see %s", filepath.Join(dir, "proxysql.log"))
	}
	select {
	case <-e.pxDone:
		return fmt.Errorf("proxysql exited: see %s", filepath.Join(dir, "proxysql.log"))
	default:
	}
	return nil
}

// startProxy starts the proxy process, killed with the demo (and by the kernel if the
// demo dies).
func (e *demoEnv) startProxy(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	e.proxy = cmd
	e.pxDone = make(chan struct{})
	go func() { cmd.Wait(); close(e.pxDone) }()
	return nil
}

// syncBuffer collects a child's output for an error message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func demoSQL(ctx context.Context, addr, rootPW, stmt string) error {
	hp, err := ipv6.ParseHostPort(addr, ipv6.DefaultPort)
	if err != nil {
		return err
	}
	s, err := mariadb.Open(hp, "root", rootPW, mariadb.Options{ConnectTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.DB().ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s on %s: %w", stmt, addr, err)
	}
	return nil
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func demoLogin(base, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": password})
	r, err := http.Post(base+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	var t struct{ Token string }
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil || t.Token == "" {
		return "", fmt.Errorf("login: %s", r.Status)
	}
	return t.Token, nil
}

func demoPost(u, token string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	r, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", r.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// Stop ends the daemon, the proxy and the servers.
func (e *demoEnv) Stop() {
	if e.cancel != nil {
		e.cancel()
		select {
		case <-e.daemon:
		case <-time.After(15 * time.Second):
		}
	}
	if e.proxy != nil && e.proxy.Process != nil {
		e.proxy.Process.Kill()
		<-e.pxDone
	}
	for _, p := range e.dbs {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

func newDemoCmd() *cobra.Command {
	var (
		dir   string
		keep  bool
		proxy string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo cluster on this machine: three MariaDB servers, ProxySQL or HAProxy, the daemon and its UI",
		Long: "Starts three local MariaDB servers (Debian's mariadbd), bootstraps GTID replication through the " +
			"API, puts ProxySQL in front (when its binary is found: $PROXYSQL_BIN, ../shared/tools/proxysql/proxysql " +
			"or PATH; HAProxy otherwise, or as --proxy says) and runs the daemon with its web UI, on free ports, in " +
			"--dir. Ctrl-C stops everything and removes the directory (unless --keep).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			out := cmd.OutOrStdout()
			dir, err := prepareDemoDir(dir)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "demo: %v\n", err)
				return exitError{code: 1}
			}
			fmt.Fprintf(out, "starting the demo in %s ...\n", dir)
			logPath := filepath.Join(dir, "replication-manager-pro.log")
			logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
			if err != nil {
				return err
			}
			defer logf.Close()
			e, err := startDemoWith(ctx, dir, logf, demoOptions{Proxy: proxy})
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "demo: %v\n", err)
				return exitError{code: 1}
			}
			exe, _ := os.Executable()
			front := fmt.Sprintf("HAProxy in front (writes 127.0.0.1:%d and [::1]:%d, reads 127.0.0.1:%d)", e.WritePort, e.WritePort, e.ReadPort)
			sql := fmt.Sprintf("mariadb -h 127.0.0.1 -P %d -u app -p demo   (through HAProxy to the master; password %s)", e.WritePort, e.AppPassword)
			if e.Proxy == "proxysql" {
				front = fmt.Sprintf("ProxySQL in front (IPv6 [::1]:%d, IPv4 127.0.0.1:%d: writes to the master, reads to the replicas;\n"+
					"admin [::1]:%d and 127.0.0.1:%d, its credentials in %s)", e.ProxySQLPort, e.ProxySQLPort,
					e.ProxySQLAdminPort, e.ProxySQLAdminPort, filepath.Join(e.Dir, "proxysql", "proxysql.cnf"))
				sql = fmt.Sprintf("mariadb -h ::1 -P %d -u app -p demo         (through ProxySQL over IPv6; password %s)\n"+
					"              mariadb -h 127.0.0.1 -P %d -u app -p demo   (through ProxySQL over IPv4)",
					e.ProxySQLPort, e.AppPassword, e.ProxySQLPort)
			}
			fmt.Fprintf(out, `
The demo cluster "demo" runs: 3 MariaDB servers in GTID replication (%s),
%s, monitored with automatic failover.

  Web UI      http://127.0.0.1:%d/   user admin, password %s
  Client      export REPLICATION_MANAGER_PASSWORD=%s   (the client reads it: no password in process arguments)
              %s client topology --host 127.0.0.1 --port %d --insecure --cluster demo
  Switchover  %s client switchover --host 127.0.0.1 --port %d --insecure --cluster demo
  SQL         %s
  TLS         the servers and the proxy serve TLS; verify them with the cluster CA %s
              (mariadb --ssl-ca=%s ...); tenant databases: %s client databases add REFERENCE ...
  Log         %s

Ctrl-C stops everything and removes %s.
`, strings.Join(e.Hosts, ", "), front, e.HTTPPort, e.AdminPassword,
				e.AdminPassword, exe, e.APIPort, exe, e.APIPort, sql, e.CAPath, e.CAPath, exe, logPath, dir)
			<-ctx.Done()
			fmt.Fprintln(out, "\nstopping the demo ...")
			e.Stop()
			if !keep {
				os.RemoveAll(e.Dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "demo", "working directory of the demo (created; removed on exit)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the directory on exit")
	cmd.Flags().StringVar(&proxy, "proxy", "auto", "proxy in front: auto (ProxySQL when found, else HAProxy), proxysql or haproxy")
	return cmd
}
