// Command replication-manager-pro is the high-availability manager for MariaDB replication
// clusters. This file only wires cobra commands to the packages that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		// cobra already printed usage errors; commands print their own problems.
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCode(err error) int {
	if e, ok := err.(exitError); ok {
		return e.code
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "replication-manager-pro",
		Short:         "High-availability manager for MariaDB GTID replication clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	root.AddCommand(newDemoCmd())
	root.AddCommand(newConfigCmd())
	root.AddCommand(newDiscoverCmd())
	root.AddCommand(newMonitorCmd())
	root.AddCommand(newFailoverCmd())
	root.AddCommand(newSwitchoverCmd())
	root.AddCommand(newClientCmd())
	root.AddCommand(newSlaposCmd())
	return root
}
