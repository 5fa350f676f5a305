package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"replication-manager-pro/api"
	"replication-manager-pro/ipv6"
)

// The client commands talk to a running daemon's REST API (like replication-manager-cli);
// they live under "client" because the top-level failover and switchover act on the
// servers directly, without a daemon.

// clientFlags are the flags of every client command (the original client's, plus --json).
type clientFlags struct {
	host     string
	port     int
	user     string
	password string
	insecure bool
	cert     string
	cluster  string
	json     bool
	timeout  time.Duration
}

// passwordEnv is read when --password is not given, so the password need not show in the
// process list.
const passwordEnv = "REPLICATION_MANAGER_PASSWORD"

func (f *clientFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.host, "host", "127.0.0.1", "API host (IPv6 with or without brackets)")
	fs.IntVar(&f.port, "port", 10005, "API port (TLS)")
	fs.StringVar(&f.user, "user", "admin", "API user")
	fs.StringVar(&f.password, "password", "repman", "API password (default: $"+passwordEnv+" when set, else repman)")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the API's TLS certificate")
	fs.StringVar(&f.cert, "cert", "", "PEM certificate (or CA) to trust for the API, e.g. <monitoring-datadir>/api/api-cert.pem")
	fs.StringVar(&f.cluster, "cluster", "", "cluster name (needed when the daemon runs several)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "bound of the whole command (failover and switchover run synchronously)")
}

// apiClient is a logged-in session.
type apiClient struct {
	f     *clientFlags
	base  string
	http  *http.Client
	token string
}

// connect logs in and returns a session; errors are printed and turned into exit 1.
// connectCluster logs in and resolves the cluster the command acts on (--cluster, or the
// only one).
func (f *clientFlags) connectCluster(cmd *cobra.Command) (*apiClient, context.Context, string, context.CancelFunc, error) {
	c, ctx, cancel, err := f.connect(cmd)
	if err != nil {
		return nil, nil, "", nil, err
	}
	name, err := c.clusterName(ctx)
	if err != nil {
		cancel()
		return nil, nil, "", nil, err
	}
	return c, ctx, name, cancel, nil
}

func (f *clientFlags) connect(cmd *cobra.Command) (*apiClient, context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	password := f.password
	if !cmd.Flags().Changed("password") {
		if v, ok := os.LookupEnv(passwordEnv); ok {
			password = v
		}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.insecure}
	if f.cert != "" {
		pem, err := os.ReadFile(f.cert)
		if err != nil {
			cancel()
			return nil, nil, nil, fmt.Errorf("--cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			cancel()
			return nil, nil, nil, fmt.Errorf("--cert %s: no PEM certificate", f.cert)
		}
		tlsCfg.RootCAs = pool
	}
	c := &apiClient{
		f:    f,
		base: "https://" + net.JoinHostPort(ipv6.Unbracket(f.host), strconv.Itoa(f.port)),
		http: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: f.timeout}},
	}
	body, _ := json.Marshal(map[string]string{"username": f.user, "password": password})
	code, resp, err := c.request(ctx, "POST", c.base+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	if code != http.StatusOK {
		cancel()
		return nil, nil, nil, fmt.Errorf("login as %s: HTTP %d: %s", f.user, code, strings.TrimSpace(string(resp)))
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(resp, &tok); err != nil || tok.Token == "" {
		cancel()
		return nil, nil, nil, fmt.Errorf("login as %s: no token in the answer", f.user)
	}
	c.token = tok.Token
	return c, ctx, cancel, nil
}

func (c *apiClient) request(ctx context.Context, method, u, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return res.StatusCode, b, nil
}

// get fetches an API path with the session's token.
func (c *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	return c.request(ctx, "GET", c.base+path, "", nil)
}

// post sends a form, as the original client's cluster actions do.
func (c *apiClient) post(ctx context.Context, path string, form url.Values) (int, []byte, error) {
	return c.request(ctx, "POST", c.base+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// clusterName returns --cluster, or the only cluster the daemon runs.
func (c *apiClient) clusterName(ctx context.Context) (string, error) {
	if c.f.cluster != "" {
		return c.f.cluster, nil
	}
	code, b, err := c.get(ctx, "/api/clusters")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("GET /api/clusters: HTTP %d: %s", code, strings.TrimSpace(string(b)))
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return "", fmt.Errorf("GET /api/clusters: %w", err)
	}
	switch len(list) {
	case 0:
		return "", errors.New("the daemon monitors no cluster")
	case 1:
		return list[0].Name, nil
	}
	names := make([]string, len(list))
	for i, l := range list {
		names[i] = l.Name
	}
	return "", fmt.Errorf("the daemon monitors several clusters (%s): choose one with --cluster", strings.Join(names, ", "))
}

func clusterPath(name, rest string) string { return "/api/clusters/" + url.PathEscape(name) + rest }

// fail prints an error and returns exit status 1.
func fail(cmd *cobra.Command, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
	return exitError{code: 1}
}

func newClientCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Talk to a running daemon through its REST API (status, topology, failover, switchover, api)",
		Long: "Client commands log in to the daemon's API (--host, --port, TLS) with --user and --password " +
			"(or $" + passwordEnv + ") and call its routes. The certificate is verified unless --insecure; " +
			"trust the daemon's self-signed one with --cert <monitoring-datadir>/api/api-cert.pem.",
	}
	f.register(cmd)
	cmd.AddCommand(newClientStatusCmd(f), newClientTopologyCmd(f), newClientControlCmd(f, "failover"),
		newClientControlCmd(f, "switchover"), newClientAPICmd(f), newClientDatabasesCmd(f), newClientManagersCmd(f), newClientServerCmd(f),
		newClientReplicaCmd(f, "stop-slave", "stop-slave", "Stop a replica's replication (both threads)"),
		newClientReplicaCmd(f, "start-slave", "start-slave", "Start a replica's replication again"),
		newClientReplicaCmd(f, "skip-event", "skip-replication-event", "Make a replica whose SQL thread stopped on an error skip that transaction and replicate on"))
	cmd.AddCommand(newClientBackupCmds(f)...)
	return cmd
}

func newClientStatusCmd(f *clientFlags) *cobra.Command {
	var withErrors bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print whether the daemon (or --cluster) is running; exit 2 when it is not",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := f.connect(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			path := "/api/status"
			name := f.cluster
			if withErrors && name == "" {
				if name, err = c.clusterName(ctx); err != nil {
					return fail(cmd, err)
				}
			}
			if name != "" {
				path = clusterPath(name, "/status")
			}
			code, b, err := c.get(ctx, path)
			if err != nil {
				return fail(cmd, err)
			}
			if code != http.StatusOK {
				return fail(cmd, fmt.Errorf("GET %s: HTTP %d: %s", path, code, strings.TrimSpace(string(b))))
			}
			var st struct {
				Alive string `json:"alive"`
			}
			if err := json.Unmarshal(b, &st); err != nil {
				return fail(cmd, fmt.Errorf("GET %s: %w", path, err))
			}
			out := cmd.OutOrStdout()
			var alerts api.Alerts
			if withErrors {
				code, ab, err := c.get(ctx, clusterPath(name, "/topology/alerts"))
				if err != nil {
					return fail(cmd, err)
				}
				if code != http.StatusOK {
					return fail(cmd, fmt.Errorf("alerts: HTTP %d: %s", code, strings.TrimSpace(string(ab))))
				}
				if err := json.Unmarshal(ab, &alerts); err != nil {
					return fail(cmd, fmt.Errorf("alerts: %w", err))
				}
			}
			if f.json {
				v := map[string]any{"alive": st.Alive}
				if withErrors {
					v["errors"], v["warnings"] = alerts.Errors, alerts.Warnings
				}
				json.NewEncoder(out).Encode(v)
			} else {
				fmt.Fprintln(out, st.Alive)
				for _, a := range alerts.Errors {
					fmt.Fprintf(out, "ERROR %s: %s\n", a.Number, a.Desc)
				}
				for _, a := range alerts.Warnings {
					fmt.Fprintf(out, "WARN  %s: %s\n", a.Number, a.Desc)
				}
			}
			if st.Alive != "running" {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withErrors, "with-errors", false, "also print the cluster's errors and warnings")
	return cmd
}

func newClientTopologyCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "topology",
		Short: "Print the cluster's servers: state, read_only, GTID position, replication source and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, name, cancel, err := f.connectCluster(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			code, b, err := c.get(ctx, clusterPath(name, "/topology/servers"))
			if err != nil {
				return fail(cmd, err)
			}
			if code != http.StatusOK {
				return fail(cmd, fmt.Errorf("topology: HTTP %d: %s", code, strings.TrimSpace(string(b))))
			}
			out := cmd.OutOrStdout()
			if f.json {
				out.Write(b)
				return nil
			}
			var servers []api.DBServer
			if err := json.Unmarshal(b, &servers); err != nil {
				return fail(cmd, fmt.Errorf("topology: %w", err))
			}
			fmt.Fprintf(out, "cluster %s\n", name)
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSERVER\tSTATE\tREAD_ONLY\tGTID\tSOURCE\tIO/SQL\tLAG")
			order, indent := treeOrder(servers)
			for k, i := range order {
				s := servers[i]
				source, threads, lag := "-", "-", "-"
				if len(s.Replications) > 0 {
					r := s.Replications[0]
					source = net.JoinHostPort(ipv6.Unbracket(r.MasterHost), r.MasterPort)
					threads = r.SlaveIORunning + "/" + r.SlaveSQLRunning
					if r.SecondsBehindMaster != nil {
						lag = strconv.FormatInt(*r.SecondsBehindMaster, 10) + "s"
					} else {
						lag = "null"
					}
				}
				gtidPos := s.CurrentGTID
				if gtidPos == "" {
					gtidPos = "-"
				}
				state := s.State
				if s.IsMaintenance {
					state += " (maintenance)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, indent[k]+s.URL, state, s.ReadOnly, gtidPos, source, threads, lag)
			}
			return tw.Flush()
		},
	}
}

// newClientControlCmd builds "client failover" and "client switchover".
func newClientControlCmd(f *clientFlags, kind string) *cobra.Command {
	var prefered string
	cmd := &cobra.Command{
		Use:  kind,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			form := url.Values{}
			if prefered != "" {
				form.Set("prefmaster", prefered)
			}
			return postControl(cmd, f, kind, "/actions/"+kind, form)
		},
	}
	if kind == "failover" {
		cmd.Short = "Ask the daemon to fail over now (refused while the master still answers)"
	} else {
		cmd.Short = "Ask the daemon to switch the master over, to --prefered host:port or the best replica"
		cmd.Flags().StringVar(&prefered, "prefered", "", "new master host:port (must be in db-servers-hosts)")
		cmd.Flags().StringVar(&prefered, "db-servers-prefered-master", "", "same as --prefered (the original client's name)")
	}
	return cmd
}

// newClientReplicaCmd is "client stop-slave|start-slave|skip-event --server H:P": a
// replica's replication by hand, through the daemon's action path.
func newClientReplicaCmd(f *clientFlags, use, action, short string) *cobra.Command {
	var server string
	var force bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return fail(cmd, fmt.Errorf("--server is needed"))
			}
			form := url.Values{}
			if force {
				form.Set("force", "true")
			}
			return postControl(cmd, f, use, "/servers/"+url.PathEscape(server)+"/actions/"+action, form)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the replica, host:port or its id")
	if action == "skip-replication-event" {
		cmd.Flags().BoolVar(&force, "force", false, "skip even when the SQL thread stopped without an error")
	}
	return cmd
}

// postControl posts an action route and prints its plan and result; exit 1 when refused
// or failed.
func postControl(cmd *cobra.Command, f *clientFlags, kind, rest string, form url.Values) error {
	c, ctx, name, cancel, err := f.connectCluster(cmd)
	if err != nil {
		return fail(cmd, err)
	}
	defer cancel()
	code, b, err := c.post(ctx, clusterPath(name, rest), form)
	if err != nil {
		return fail(cmd, err)
	}
	out := cmd.OutOrStdout()
	var res controlAnswer
	if jerr := json.Unmarshal(b, &res); jerr != nil {
		// Not a plan: a plain-text refusal (400 Master failed, 401, 403...).
		if code == http.StatusOK {
			fmt.Fprintf(out, "%s done\n", kind)
			return nil
		}
		return fail(cmd, fmt.Errorf("%s: HTTP %d: %s", kind, code, strings.TrimSpace(string(b))))
	}
	if f.json {
		out.Write(b)
	} else {
		printControl(out, kind, res)
	}
	if code != http.StatusOK {
		if !f.json {
			fmt.Fprintf(cmd.ErrOrStderr(), "error: %s: %s\n", kind, res.Error)
		}
		return exitError{code: 1}
	}
	return nil
}

// controlAnswer reads api.ControlResult leniently: addresses as plain strings (a plan
// without a new master carries an empty address).
type controlAnswer struct {
	Plan struct {
		OldMaster string `json:"oldMaster"`
		NewMaster string `json:"newMaster"`
		Refused   string `json:"refused"`
		Code      string `json:"code"`
	} `json:"plan"`
	Result *struct {
		Duration      time.Duration `json:"durationNs"`
		WritableAfter time.Duration `json:"writableAfterNs"`
		Err           string        `json:"error"`
		Steps         []struct {
			Step struct {
				Kind   string `json:"kind"`
				Server string `json:"server"`
			} `json:"step"`
			Duration time.Duration `json:"durationNs"`
			Error    string        `json:"error"`
			Skipped  string        `json:"skipped"`
		} `json:"steps"`
	} `json:"result"`
	Error string `json:"error"`
}

func printControl(w io.Writer, kind string, res controlAnswer) {
	p := res.Plan
	if p.Refused != "" {
		fmt.Fprintf(w, "%s refused (%s): %s\n", kind, p.Code, p.Refused)
		return
	}
	if p.NewMaster == "" || p.NewMaster == ":0" { // an action on one server
		fmt.Fprintf(w, "%s on %s\n", kind, p.OldMaster)
	} else {
		fmt.Fprintf(w, "%s from %s to %s\n", kind, p.OldMaster, p.NewMaster)
	}
	if res.Result == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range res.Result.Steps {
		status := "ok"
		switch {
		case s.Error != "":
			status = "error: " + s.Error
		case s.Skipped != "":
			status = "skipped: " + s.Skipped
		}
		server := s.Step.Server
		if server == ":0" {
			server = ""
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Step.Kind, server, s.Duration.Round(time.Millisecond), status)
	}
	tw.Flush()
	if res.Result.Err == "" {
		fmt.Fprintf(w, "%s done in %s (writable after %s)\n", kind, res.Result.Duration.Round(time.Millisecond), res.Result.WritableAfter.Round(time.Millisecond))
	}
}

func newClientAPICmd(f *clientFlags) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "GET any API URL or path with a fresh token and print the answer (exit 1 on HTTP >= 400)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				return fail(cmd, errors.New("--url is required"))
			}
			c, ctx, cancel, err := f.connect(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			u := target
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
				if !strings.HasPrefix(u, "/") {
					u = "/" + u
				}
				u = c.base + u
			}
			code, b, err := c.request(ctx, "GET", u, "", nil)
			if err != nil {
				return fail(cmd, err)
			}
			out := cmd.OutOrStdout()
			out.Write(b)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				fmt.Fprintln(out)
			}
			if code >= 400 {
				fmt.Fprintf(cmd.ErrOrStderr(), "error: HTTP %d\n", code)
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "URL (https://127.0.0.1:10005/api/clusters) or path (/api/clusters)")
	return cmd
}

// treeOrder lists the servers as their replication tree reads: each source followed by the
// servers replicating from it, indented one step per level ("└ " under the source). Servers
// outside any tree of configured servers come last, unindented.
func treeOrder(servers []api.DBServer) (order []int, indent []string) {
	parent := make([]int, len(servers))
	children := make([][]int, len(servers))
	for i, s := range servers {
		parent[i] = -1
		if len(s.Replications) == 0 {
			continue
		}
		r := s.Replications[0]
		port, _ := strconv.Atoi(r.MasterPort)
		src := ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: port}
		for j, o := range servers {
			p, _ := strconv.Atoi(o.Port)
			if j != i && ipv6.SameAddr(src, ipv6.HostPort{Host: ipv6.Unbracket(o.Host), Port: p}) {
				parent[i] = j
				children[j] = append(children[j], i)
				break
			}
		}
	}
	seen := make([]bool, len(servers))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] {
			return // a replication cycle: each server once
		}
		seen[i] = true
		order = append(order, i)
		prefix := ""
		if depth > 0 {
			prefix = strings.Repeat("  ", depth-1) + "└ "
		}
		indent = append(indent, prefix)
		for _, c := range children[i] {
			walk(c, depth+1)
		}
	}
	for i := range servers {
		if parent[i] < 0 {
			walk(i, 0)
		}
	}
	for i := range servers {
		if !seen[i] {
			walk(i, 0) // members of a cycle
		}
	}
	return order, indent
}
