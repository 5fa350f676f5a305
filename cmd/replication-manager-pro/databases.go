package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"replication-manager-pro/api"
	"replication-manager-pro/tenant"
)

// client databases: the tenant databases of a cluster (docs/tenants.md), through the
// daemon's /api/clusters/{c}/databases routes.

func newClientDatabasesCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "databases",
		Short: "Tenant databases of a cluster: list, add, remove, sync",
		Long: "Tenant databases are the databases tenants request on a cluster (SlapOS shared instances): a " +
			"database and an SSL-only account per reference, reachable through the cluster's proxy at the " +
			"published URLs. Passwords are never taken from the command line (--db-password-file, " +
			"--db-password-stdin) and never printed unless --show-passwords (or --json, the API's answer).",
	}
	cmd.AddCommand(newClientDatabasesListCmd(f), newClientDatabasesAddCmd(f), newClientDatabasesRemoveCmd(f), newClientDatabasesSyncCmd(f))
	return cmd
}

func newClientDatabasesListCmd(f *clientFlags) *cobra.Command {
	var show bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the cluster's tenant databases and their URLs (passwords hidden)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, name, cancel, err := f.connectCluster(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			code, b, err := c.get(ctx, clusterPath(name, "/databases"))
			if err != nil {
				return fail(cmd, err)
			}
			if code != http.StatusOK {
				return fail(cmd, fmt.Errorf("databases: HTTP %d: %s", code, strings.TrimSpace(string(b))))
			}
			out := cmd.OutOrStdout()
			if f.json {
				out.Write(b)
				return nil
			}
			var list []tenant.Tenant
			if err := json.Unmarshal(b, &list); err != nil {
				return fail(cmd, fmt.Errorf("databases: %w", err))
			}
			printTenants(out, name, list, show)
			return nil
		},
	}
	cmd.Flags().BoolVar(&show, "show-passwords", false, "print the URLs with their passwords")
	return cmd
}

func printTenants(w io.Writer, cluster string, list []tenant.Tenant, show bool) {
	fmt.Fprintf(w, "cluster %s: %d tenant database(s)\n", cluster, len(list))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tDATABASE\tUSER\tCHARSET\tSSL\tSTATE\tURL\tURL_V4")
	for _, t := range list {
		cs := t.Charset
		if t.Collation != "" {
			cs = t.Collation
		}
		ssl := "optional"
		if t.RequireSSL {
			ssl = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Reference, t.Database, t.User, cs, ssl, t.State,
			shownURL(t.Published.URL, show), shownURL(t.Published.URLv4, show))
	}
	tw.Flush()
}

// shownURL hides a URL's password unless show.
func shownURL(raw string, show bool) string {
	if raw == "" {
		return "-"
	}
	if show {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}

// readDBPassword reads the tenant's password from a file (first line) or standard input.
func readDBPassword(cmd *cobra.Command, file string, stdin bool) (string, error) {
	var r io.Reader
	switch {
	case file != "" && stdin:
		return "", fmt.Errorf("--db-password-file and --db-password-stdin exclude each other")
	case file != "":
		fh, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--db-password-file: %w", err)
		}
		defer fh.Close()
		r = fh
	case stdin:
		r = cmd.InOrStdin()
	default:
		return "", nil
	}
	line, err := bufio.NewReader(io.LimitReader(r, tenant.MaxPassword+2)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", fmt.Errorf("password: empty (omit the flag to have one generated)")
	}
	return line, nil
}

func newClientDatabasesAddCmd(f *clientFlags) *cobra.Command {
	var (
		pwFile  string
		pwStdin bool
		charset string
		noSSL   bool
		show    bool
	)
	cmd := &cobra.Command{
		Use:   "add REFERENCE",
		Short: "Create the tenant database of REFERENCE (nothing changes if it exists)",
		Long: "Creates the database and the account of REFERENCE on the cluster's master (replicated to every " +
			"node), adds the account to the proxies, and prints its URLs. The password is generated unless " +
			"given by --db-password-file or --db-password-stdin; it and the charset are used at creation only.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readDBPassword(cmd, pwFile, pwStdin)
			if err != nil {
				return fail(cmd, err)
			}
			body := map[string]any{"reference": args[0], "require_ssl": !noSSL}
			if pw != "" {
				body["db_password"] = pw
			}
			if charset != "" {
				body["db_charset"] = charset
			}
			c, ctx, name, cancel, err := f.connectCluster(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			b, _ := json.Marshal(body)
			code, resp, err := c.request(ctx, "POST", c.base+clusterPath(name, "/databases"), "application/json", bytes.NewReader(b))
			if err != nil {
				return fail(cmd, err)
			}
			return printChange(cmd, f, name, code, resp, show)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&pwFile, "db-password-file", "", "read the tenant's password from this file's first line")
	fl.BoolVar(&pwStdin, "db-password-stdin", false, "read the tenant's password from standard input")
	fl.StringVar(&charset, "charset", "", "character set or collation ("+strings.Join(tenant.Charsets, ", ")+"); default "+tenant.DefaultCharset)
	fl.BoolVar(&noSSL, "no-require-ssl", false, "let the account connect without TLS")
	fl.BoolVar(&show, "show-passwords", false, "print the URLs with their passwords")
	return cmd
}

func newClientDatabasesRemoveCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove REFERENCE",
		Short: "Drop the tenant database of REFERENCE: its accounts, its database, its proxy users",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, name, cancel, err := f.connectCluster(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			code, resp, err := c.request(ctx, "DELETE", c.base+clusterPath(name, "/databases/"+url.PathEscape(args[0])), "", nil)
			if err != nil {
				return fail(cmd, err)
			}
			return printChange(cmd, f, name, code, resp, false)
		},
	}
}

// tenantChange is the API's answer to a change.
type tenantChange struct {
	Cluster   string          `json:"cluster"`
	Result    *tenant.Result  `json:"result"`
	Database  *tenant.Tenant  `json:"database"`
	Databases []tenant.Tenant `json:"databases"`
	Error     string          `json:"error"`
}

func printChange(cmd *cobra.Command, f *clientFlags, cluster string, code int, resp []byte, show bool) error {
	out := cmd.OutOrStdout()
	if f.json && (code < 300 || code == http.StatusBadGateway) {
		out.Write(resp)
	}
	if code >= 300 && code != http.StatusBadGateway {
		return fail(cmd, fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(string(resp))))
	}
	var a tenantChange
	if err := json.Unmarshal(resp, &a); err != nil {
		return fail(cmd, fmt.Errorf("answer: %w", err))
	}
	if !f.json {
		if a.Result != nil {
			for _, l := range []struct {
				what string
				refs []string
			}{{"created", a.Result.Created}, {"updated", a.Result.Updated}, {"removed", a.Result.Removed}, {"unchanged", a.Result.Unchanged}} {
				if len(l.refs) > 0 {
					fmt.Fprintf(out, "%s: %s\n", l.what, strings.Join(l.refs, ", "))
				}
			}
		}
		if a.Database != nil {
			printTenants(out, cluster, []tenant.Tenant{*a.Database}, show)
		}
	}
	if code == http.StatusBadGateway {
		return fail(cmd, fmt.Errorf("%s", a.Error))
	}
	return nil
}

func newClientDatabasesSyncCmd(f *clientFlags) *cobra.Command {
	var file, publish string
	cmd := &cobra.Command{
		Use:   "sync --file databases.json",
		Short: "Make each cluster's tenant databases exactly those of a databases.json (as slapos render writes it)",
		Long: "Sends each cluster's list of the file (an object: cluster -> {\"databases\": [...]}) as " +
			"PUT /api/clusters/{c}/databases: the missing databases are created, those no longer listed dropped. " +
			"With --publish, the published parameters of every database, as the daemon answers them, are " +
			"written to that file (mode 0600, it holds passwords): per reference url, url_v4, cluster, ssl_ca.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fail(cmd, fmt.Errorf("--file is required"))
			}
			data, err := readSmallFile(file)
			if err != nil {
				return fail(cmd, fmt.Errorf("--file: %w", err))
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(data, &doc); err != nil {
				return fail(cmd, fmt.Errorf("%s: want an object of clusters: %w", file, err))
			}
			c, ctx, cancel, err := f.connect(cmd)
			if err != nil {
				return fail(cmd, err)
			}
			defer cancel()
			clusters := make([]string, 0, len(doc))
			for n := range doc {
				if f.cluster == "" || strings.EqualFold(n, f.cluster) {
					clusters = append(clusters, n)
				}
			}
			sort.Strings(clusters)
			published := map[string]tenant.Published{}
			failed := false
			for _, n := range clusters {
				code, resp, err := c.request(ctx, "PUT", c.base+clusterPath(n, "/databases"), "application/json", bytes.NewReader(doc[n]))
				if err != nil {
					return fail(cmd, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %s:\n", n)
				if perr := printChange(cmd, &clientFlags{}, n, code, resp, false); perr != nil {
					failed = true
					if code >= 300 && code != http.StatusBadGateway {
						continue
					}
				}
				var a tenantChange
				if json.Unmarshal(resp, &a) == nil {
					for _, t := range a.Databases {
						published[t.Reference] = t.Published
					}
				}
			}
			if publish != "" {
				b, _ := json.MarshalIndent(published, "", "  ")
				if err := writePrivate(publish, append(b, '\n')); err != nil {
					return fail(cmd, err)
				}
			}
			if failed {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "databases.json: per cluster, {\"databases\": [...]} (written by slapos render)")
	cmd.Flags().StringVar(&publish, "publish", "", "write the published parameters per reference to this file (0600)")
	return cmd
}

// writePrivate writes a file of mode 0600 through a rename.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tenantSyncInterval spaces the daemon's tenant user syncs into ProxySQL (tests shorten it).
var tenantSyncInterval = time.Minute

// tenantSyncLoop keeps the clusters' ProxySQL tenant users in step until ctx ends.
func tenantSyncLoop(ctx context.Context, srv *api.Server) {
	t := time.NewTicker(tenantSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			srv.SyncTenantProxies(ctx)
		}
	}
}
