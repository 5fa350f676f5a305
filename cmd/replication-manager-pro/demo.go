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
	"replication-manager-pro/haproxy"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// demoMarker marks a directory the demo created, so it only ever removes its own.
const demoMarker = ".replication-manager-pro-demo"

// demoEnv is a running demo: three MariaDB servers, HAProxy and the daemon.
type demoEnv struct {
	Dir                 string
	HTTPPort, APIPort   int
	WritePort, ReadPort int
	AdminPassword       string
	AppPassword         string
	Hosts               []string

	dbs     []*dbproc.Process
	haproxy *exec.Cmd
	hpDone  chan struct{}
	cancel  context.CancelFunc
	daemon  chan error
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

// startDemo builds the demo in dir (prepared by prepareDemoDir) and returns once the
// cluster is bootstrapped and monitored. log receives the daemon's log.
func startDemo(ctx context.Context, dir string, log io.Writer) (*demoEnv, error) {
	var err error
	e := &demoEnv{Dir: dir, AdminPassword: secret(), AppPassword: secret()}
	ok := false
	defer func() {
		if !ok {
			e.Stop()
		}
	}()
	ports := make([]int, 9)
	for i := range ports {
		if ports[i], err = dbproc.FreePort(); err != nil {
			return nil, err
		}
	}
	e.HTTPPort, e.APIPort, e.WritePort, e.ReadPort = ports[3], ports[4], ports[5], ports[6]
	rootPW, replPW := secret(), secret()
	accounts := []dbproc.Account{
		{User: "root", Host: "localhost", Password: rootPW},
		{User: "root", Host: "%", Password: rootPW, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
		{User: "repl", Host: "%", Password: replPW, Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"},
		{User: "app", Host: "%", Password: e.AppPassword, Grants: "ALL PRIVILEGES ON demo.*"},
	}

	// Three servers, bootstrapped and started in parallel.
	e.dbs = make([]*dbproc.Process, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		e.Hosts = append(e.Hosts, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			db := dbproc.DB{Dir: filepath.Join(dir, fmt.Sprintf("db%d", i+1)), Port: ports[i], ServerID: i + 1, Args: dbproc.SmallFootprint}
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
haproxy = true
haproxy-servers = "127.0.0.1"
haproxy-ip-write-bind = "127.0.0.1"
haproxy-ip-read-bind = "127.0.0.1"
haproxy-servers-ipv6 = "[::1]"
haproxy-write-port = %d
haproxy-read-port = %d
haproxy-stat-port = %d
haproxy-api-port = %d
`, filepath.Join(dir, "rmp"), e.APIPort, e.HTTPPort, e.AdminPassword, strings.Join(e.Hosts, ","), e.Hosts[0],
		rootPW, replPW, e.WritePort, e.ReadPort, ports[7], ports[8])
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}

	// HAProxy in front, from the generated configuration.
	hs, err := haproxy.SettingsFrom(&cfg.Clusters[0], 0)
	if err != nil {
		return nil, err
	}
	hcfg, err := haproxy.Config(hs, nil)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(hs.WorkDir, 0o750); err != nil {
		return nil, err
	}
	hpath := filepath.Join(hs.WorkDir, "haproxy.cfg")
	if err := os.WriteFile(hpath, []byte(hcfg), 0o640); err != nil {
		return nil, err
	}
	e.haproxy = exec.Command("haproxy", "-f", hpath, "-db")
	e.haproxy.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var hpOut bytes.Buffer
	e.haproxy.Stdout, e.haproxy.Stderr = &hpOut, &hpOut
	if err := e.haproxy.Start(); err != nil {
		return nil, fmt.Errorf("haproxy (Debian package haproxy): %w", err)
	}
	e.hpDone = make(chan struct{})
	go func() { e.haproxy.Wait(); close(e.hpDone) }()
	if err := waitFor(ctx, 10*time.Second, func() bool { _, err := os.Stat(hs.Socket()); return err == nil }); err != nil {
		return nil, fmt.Errorf("haproxy did not start: %s", hpOut.String())
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

// Stop ends the daemon, HAProxy and the servers.
func (e *demoEnv) Stop() {
	if e.cancel != nil {
		e.cancel()
		select {
		case <-e.daemon:
		case <-time.After(15 * time.Second):
		}
	}
	if e.haproxy != nil && e.haproxy.Process != nil {
		e.haproxy.Process.Kill()
		<-e.hpDone
	}
	for _, p := range e.dbs {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

func newDemoCmd() *cobra.Command {
	var (
		dir  string
		keep bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo cluster on this machine: three MariaDB servers, HAProxy, the daemon and its UI",
		Long: "Starts three local MariaDB servers (Debian's mariadbd), bootstraps GTID replication through the " +
			"API, puts HAProxy in front and runs the daemon with its web UI, on free ports, in --dir. " +
			"Ctrl-C stops everything and removes the directory (unless --keep).",
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
			e, err := startDemo(ctx, dir, logf)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "demo: %v\n", err)
				return exitError{code: 1}
			}
			exe, _ := os.Executable()
			fmt.Fprintf(out, `
The demo cluster "demo" runs: 3 MariaDB servers in GTID replication (%s),
HAProxy in front (writes 127.0.0.1:%d and [::1]:%d, reads 127.0.0.1:%d), monitored with automatic failover.

  Web UI      http://127.0.0.1:%d/   user admin, password %s
  Client      %s client topology --host 127.0.0.1 --port %d --user admin --password %s --insecure --cluster demo
  Switchover  %s client switchover --host 127.0.0.1 --port %d --user admin --password %s --insecure --cluster demo
  SQL         mariadb -h 127.0.0.1 -P %d -u app -p%s demo   (through HAProxy to the master)
  Log         %s

Ctrl-C stops everything and removes %s.
`, strings.Join(e.Hosts, ", "), e.WritePort, e.WritePort, e.ReadPort, e.HTTPPort, e.AdminPassword,
				exe, e.APIPort, e.AdminPassword, exe, e.APIPort, e.AdminPassword, e.WritePort, e.AppPassword, logPath, dir)
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
	return cmd
}
