package main

import (
	"fmt"

	"github.com/spf13/cobra"
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
		cf      configFlags
		changed bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings per cluster",
		Long: "Loads the main file, its include directory and the command-line overrides " +
			"(--<key>=value, applied last to every cluster), then prints each cluster's effective " +
			"settings as TOML with secrets masked, or every problem found, one per line, on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(cmd)
			if err != nil {
				return err
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
	cf.register(cmd)
	cmd.Flags().BoolVar(&changed, "changed", false, "print only the values that differ from the built-in defaults")
	return cmd
}
