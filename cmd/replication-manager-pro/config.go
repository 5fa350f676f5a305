package main

import "github.com/spf13/cobra"

// newConfigCmd groups configuration commands; `config check` is added by the config work.
func newConfigCmd() *cobra.Command {
	return &cobra.Command{Use: "config", Short: "Inspect and validate configuration files"}
}
