package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"replication-manager-pro/config"
	"replication-manager-pro/orchestrator/slapos"
)

// newSlaposPublishCmd writes the connection parameters the root instance publishes.
func newSlaposPublishCmd() *cobra.Command {
	var cfgPath, apiAddr string
	cmd := &cobra.Command{
		Use:   "publish --config DIR/config.toml [--api-address HOST:PORT]",
		Short: "Write DIR/published.json: the connection parameters SlapOS publishes (output schema, clusters, shared instances)",
		Long: "Computes from the rendered configuration what the root instance publishes: backend-url, url, username " +
			"and repman-password (SlapOS' instance-repman-output-schema.json), each cluster's proxy addresses on IPv6 and " +
			"IPv4 with TLS and its CA, and the shared instances' url and url_v4 from published-databases.json, and " +
			"writes them to published.json beside config.toml (mode 0600). Prints the file's path, never its secrets.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "slapos publish: --config is required")
				return exitError{code: 1}
			}
			cfg, err := config.Load(cfgPath, config.Options{})
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "slapos publish: %v\n", err)
				return exitError{code: 1}
			}
			dir := filepath.Dir(cfgPath)
			p, err := slapos.WritePublished(dir, cfg, apiAddr)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "slapos publish: %v\n", err)
				return exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (backend-url %s, %d clusters, %d shared instances)\n",
				filepath.Join(dir, slapos.PublishedFile), p.BackendURL, len(p.Clusters), len(p.Shared))
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the rendered config.toml")
	cmd.Flags().StringVar(&apiAddr, "api-address", "", "the API's address as clients reach it (default api-bind:api-port)")
	return cmd
}
