package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"replication-manager-pro/slaposim"
)

const simulateMarker = ".replication-manager-pro-simulate"

// newSlaposSimulateCmd runs the SlapOS node simulator.
func newSlaposSimulateCmd() *cobra.Command {
	var (
		params, shared, dir, network, proxy string
		keep                                bool
		ticker                              string
	)
	cmd := &cobra.Command{
		Use:   "simulate --parameters request.json [--shared-instances list.json] [--dir DIR] [--network netns|loopback] [--proxy auto|proxysql|haproxy]",
		Short: "Run a repman instance request on simulated SlapOS computers: manager, partition agents, MariaDB, proxy",
		Long: "Renders the request as the instance profile would, makes one computer per -sla-<i>-computer_guid (a network " +
			"namespace with one IPv6 per partition when root, else this machine's loopback), starts the manager in the root " +
			"partition, a partition agent per database partition in its computer (which installs the bundle and runs " +
			"mariadbd), each cluster's ProxySQL in the root partition under its partition agent (slapos agent --kind proxysql; " +
			"with --proxy haproxy, or auto without a proxysql binary, HAProxy on the port SlapOS gives the ProxySQL instead), " +
			"bootstraps replication as SlapOS' repman-manager.sh " +
			"does, requests the shared instances' databases, and prints the UI, the published parameters and the tenants' " +
			"URLs (passwords masked: they are in DIR/root/published.json, mode 0600). Ctrl-C stops everything and removes " +
			"DIR (--keep leaves it).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			if params == "" {
				fmt.Fprintln(stderr, "slapos simulate: --parameters is required")
				return exitError{code: 1}
			}
			abs, err := prepareSimDir(dir)
			if err != nil {
				fmt.Fprintf(stderr, "slapos simulate: %v\n", err)
				return exitError{code: 1}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			proxysqlBin := ""
			switch proxy {
			case "auto":
				proxysqlBin, _ = findProxySQL() // HAProxy stands in without it
			case "proxysql":
				if proxysqlBin, err = findProxySQL(); err != nil {
					fmt.Fprintf(stderr, "slapos simulate: --proxy proxysql: %v\n", err)
					return exitError{code: 1}
				}
			case "haproxy":
			default:
				fmt.Fprintf(stderr, "slapos simulate: --proxy %q: want auto, proxysql or haproxy\n", proxy)
				return exitError{code: 1}
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			out := cmd.OutOrStdout()
			t0 := time.Now()
			sim, err := slaposim.Start(ctx, slaposim.Options{Parameters: params, SharedInstances: shared, Dir: abs, Network: network,
				ProxySQL:    proxysqlBin,
				Self:        func(args ...string) *exec.Cmd { return exec.Command(exe, args...) },
				MonitorArgs: []string{"--monitoring-ticker", ticker}, Log: out})
			if err != nil {
				fmt.Fprintf(stderr, "slapos simulate: %v\n(logs under %s)\n", err, abs)
				return exitError{code: 1}
			}
			defer func() {
				fmt.Fprintln(out, "stopping: agents (each stops its mariadbd), proxies, manager")
				sim.Close()
				if !keep {
					os.RemoveAll(abs)
				}
			}()
			printSimulation(out, sim, time.Since(t0))
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&params, "parameters", "", "the repman instance request (repman-cluster-dict, ...)")
	f.StringVar(&shared, "shared-instances", "", "shared instances (slave_instance_list) as JSON: the tenants' database requests")
	f.StringVar(&dir, "dir", "slapos-simulation", "working directory (created; removed at the end unless --keep)")
	f.StringVar(&network, "network", "", "netns (computers as network namespaces: root) or loopback; default netns when root")
	f.BoolVar(&keep, "keep", false, "keep the directory (logs, partitions) at the end")
	f.StringVar(&ticker, "monitoring-ticker", "1", "the manager's monitoring-ticker (seconds)")
	f.StringVar(&proxy, "proxy", "auto", "the clusters' proxy: proxysql (under its partition agent; $PROXYSQL_BIN, ../shared/tools/proxysql "+
		"or PATH), haproxy (in ProxySQL's place), or auto: proxysql when found")
	return cmd
}

// prepareSimDir makes dir, refusing a non-empty directory the simulator did not make.
func prepareSimDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(abs, simulateMarker)); err != nil {
			return "", fmt.Errorf("%s exists and was not made by the simulator: choose another --dir", abs)
		}
		if err := os.RemoveAll(abs); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	return abs, os.WriteFile(filepath.Join(abs, simulateMarker), nil, 0o644)
}

// maskURL hides a URL's password.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func printSimulation(w io.Writer, sim *slaposim.Sim, took time.Duration) {
	p := sim.Published
	fmt.Fprintf(w, "\nready in %s\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "UI and API:      %s  (user %s; password: repman-password in %s)\n", p.BackendURL, p.Username,
		filepath.Join(sim.RootDir(), "published.json"))
	names := make([]string, 0, len(p.Clusters))
	for n := range p.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := p.Clusters[n]
		fmt.Fprintf(w, "cluster %s:  %s on %s and %s (tls %v); databases %v\n", n, c.Proxy, c.ProxyIPv6, c.ProxyIPv4, c.TLS, c.Databases)
	}
	for _, r := range p.SharedReferences() {
		t := p.Shared[r]
		fmt.Fprintf(w, "shared instance %s (cluster %s):\n  url    = %s\n  url_v4 = %s\n", r, t.Cluster, maskURL(t.URL), maskURL(t.URLv4))
	}
	for _, db := range sim.DBs {
		fmt.Fprintf(w, "partition %s on %s: %s (agent log %s)\n", db.Addr, db.Computer.GUID, db.Partition, db.AgentLog())
	}
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}
