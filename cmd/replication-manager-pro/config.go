package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"replication-manager-pro/config"
)

// newConfigCmd groups configuration commands.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect and validate configuration files"}
	cmd.AddCommand(newConfigCheckCmd())
	return cmd
}

// newConfigCheckCmd loads the configuration as the monitor would and prints either the
// effective settings of every cluster (exit 0) or every problem found (exit 1).
func newConfigCheckCmd() *cobra.Command {
	var (
		path     string
		clusters []string
		changed  bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings per cluster",
		Long: "Loads the main file, its include directory and the command-line overrides " +
			"(--<key>=value, applied last to every cluster), then prints each cluster's effective " +
			"settings as TOML with secrets masked, or every problem found, one per line, on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			if path == "" {
				p, err := config.FindConfig()
				if err != nil {
					fmt.Fprintln(stderr, err)
					return exitError{code: 1}
				}
				path = p
			}
			cfg, err := config.Load(path, config.Options{
				Overrides: config.Overrides(cmd.Flags()),
				Clusters:  clusters,
			})
			if err != nil {
				var ps config.Problems
				if errors.As(err, &ps) {
					for _, p := range ps {
						fmt.Fprintln(stderr, p.Error())
					}
				} else {
					fmt.Fprintln(stderr, err)
				}
				return exitError{code: 1}
			}
			out := cmd.OutOrStdout()
			for _, f := range cfg.Files {
				fmt.Fprintf(out, "# read %s\n", f)
			}
			fmt.Fprintln(out)
			cfg.WriteTOML(out, changed)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&path, "config", "", "main configuration file (default: config.toml in /etc/replication-manager/ or .)")
	fs.StringSliceVar(&clusters, "cluster", nil, "only these clusters (comma-separated)")
	fs.BoolVar(&changed, "changed", false, "print only the values that differ from the built-in defaults")
	config.AddFlags(fs)
	return cmd
}
