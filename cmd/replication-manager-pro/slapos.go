package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"replication-manager-pro/orchestrator/slapos"
)

// newSlaposCmd groups the SlapOS commands.
func newSlaposCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "slapos", Short: "SlapOS orchestrator: render an instance request into configuration files"}
	cmd.AddCommand(newSlaposRenderCmd())
	cmd.AddCommand(newSlaposAgentCmd())    // agent.go
	cmd.AddCommand(newSlaposPublishCmd())  // publish.go
	cmd.AddCommand(newSlaposSimulateCmd()) // simulate.go
	return cmd
}

// newSlaposRenderCmd renders a repman instance request (the instance profile, in Go).
func newSlaposRenderCmd() *cobra.Command {
	var (
		params, out, parts string
		shared             string
		root               slapos.Partition
		port, adminPort    int
		checkFree          bool
	)
	cmd := &cobra.Command{
		Use:   "render --parameters request.json --out DIR",
		Short: "Validate a repman instance request and write config.toml and cluster.d/",
		Long: "Validates the request's parameters (repman-cluster-dict, ...; also as SlapOS' request.serialised " +
			"sends them, {\"_\": \"<JSON>\"}) against the shipped JSON Schema, then writes DIR/config.toml, " +
			"DIR/cluster.d/config-<cluster>.toml, DIR/partition-requests.json (what to request for each database, " +
			"its partition credential included), DIR/partition-credentials.json (every node's credential, sent as " +
			"\"Authorization: Bearer <credential>\") and DIR/secrets.json (generated passwords, reused by later " +
			"renders); every file mode 0600. All or nothing: the files are rendered and loaded back in a temporary " +
			"directory, then moved over the old ones; on any failure the old files stay. Partitions and addresses " +
			"come from --partitions (see docs/slapos.md), else one local node: the root's --ipv4/--ipv6 for every " +
			"database, database partitions under DIR/partitions. Each bad parameter is reported on one line; exit 1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			fail := func(format string, a ...any) error {
				fmt.Fprintf(stderr, format+"\n", a...)
				return exitError{code: 1}
			}
			if params == "" || out == "" {
				return fail("slapos render: --parameters and --out are required")
			}
			data, err := readSmallFile(params)
			if err != nil {
				return fail("slapos render: --parameters: %v", err)
			}
			req, warnings, err := slapos.ParseRequest(data)
			if err != nil {
				var re *slapos.RequestError
				if errors.As(err, &re) {
					for _, l := range re.Lines {
						fmt.Fprintln(stderr, l)
					}
					return exitError{code: 1}
				}
				return fail("%s: %v", params, err)
			}
			for _, w := range warnings {
				fmt.Fprintln(stderr, "warning:", w)
			}
			if shared != "" {
				b, err := readSmallFile(shared)
				if err != nil {
					return fail("slapos render: --shared-instances: %v", err)
				}
				si, err := slapos.ReadSharedInstances(b)
				if err != nil {
					var re *slapos.RequestError
					if errors.As(err, &re) {
						for _, l := range re.Lines {
							fmt.Fprintln(stderr, shared+": "+l)
						}
						return exitError{code: 1}
					}
					return fail("%s: %v", shared, err)
				}
				req.SharedInstances = si
			}
			o := slapos.RenderOptions{OutDir: out, Root: root, ProxySQLPort: port, ProxySQLAdminPort: adminPort,
				CheckFreePorts: checkFree, Source: params}
			if parts != "" {
				b, err := readSmallFile(parts)
				if err != nil {
					return fail("slapos render: --partitions: %v", err)
				}
				if o.Alloc, err = slapos.ReadAllocation(b); err != nil {
					return fail("%s: %v", parts, err)
				}
			}
			if root.Path != "" && !filepath.IsAbs(root.Path) {
				if o.Root.Path, err = filepath.Abs(root.Path); err != nil {
					return fail("slapos render: %v", err)
				}
			}
			res, err := slapos.Render(req, o)
			if err != nil {
				var re *slapos.RequestError
				if errors.As(err, &re) {
					for _, l := range re.Lines {
						fmt.Fprintln(stderr, l)
					}
					return exitError{code: 1}
				}
				return fail("slapos render: %v", err)
			}
			w := cmd.OutOrStdout()
			for _, f := range res.Files {
				fmt.Fprintf(w, "wrote %s\n", filepath.Join(out, f))
			}
			for _, f := range res.Removed {
				fmt.Fprintf(w, "removed %s\n", filepath.Join(out, f))
			}
			for _, c := range res.Clusters {
				fmt.Fprintf(w, "%s: databases %v, proxysql %s (admin port %d)\n", c.Name, c.Hosts, c.ProxySQL, c.ProxySQLAdminPort)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&params, "parameters", "", "instance parameters as JSON (the repman request: repman-cluster-dict, ...)")
	f.StringVar(&out, "out", "", "output directory")
	f.StringVar(&parts, "partitions", "", "allocated partitions as JSON (format in docs/slapos.md)")
	f.StringVar(&shared, "shared-instances", "", "the shared instances' list (slave_instance_list) as JSON, instead of the parameters' key")
	f.StringVar(&root.IPv4, "ipv4", "", "root partition IPv4: listeners, ProxySQL, databases without --partitions (default 127.0.0.1)")
	f.StringVar(&root.IPv6, "ipv6", "", "root partition IPv6: ProxySQL's IPv6 bind, databases without --partitions (default ::1)")
	f.StringVar(&root.Path, "root-partition", "", "root partition path, holding the ProxySQL (default: the output directory)")
	f.IntVar(&port, "proxysql-port", 0, fmt.Sprintf("first ProxySQL client port tried (default %d; the k-th cluster by name gets the k-th free one)", slapos.ProxySQLPortMin))
	f.IntVar(&adminPort, "proxysql-admin-port", 0, fmt.Sprintf("first ProxySQL admin port tried (default %d)", slapos.ProxySQLAdminPortMin))
	f.BoolVar(&checkFree, "check-free-ports", false, "skip ProxySQL ports already listened on at the root IPv4")
	return cmd
}

// maxRequestFile bounds what `slapos render` reads from --parameters and --partitions.
const maxRequestFile = 4 << 20

// readSmallFile reads a regular file of at most maxRequestFile bytes: a FIFO, a device or a
// directory is an error rather than a hang or an exhausted memory.
func readSmallFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO does not wait for a writer (it has no effect on files).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRequestFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxRequestFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxRequestFile)
	}
	return b, nil
}
