// Command replication-manager-pro is the high-availability manager for MariaDB replication
// clusters. This file only wires cobra commands to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	root.SetArgs(commandFirst(root, os.Args[1:]))
	if err := root.Execute(); err != nil {
		// cobra already printed usage errors; commands print their own problems.
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCode(err error) int {
	var e exitError
	if errors.As(err, &e) {
		return e.code
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}

func newRootCmd() *cobra.Command {
	var prof profiling
	root := &cobra.Command{
		Use:           "replication-manager-pro",
		Short:         "High-availability manager for MariaDB GTID replication clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Profiles as the original's global flags, which SlapOS passes before `monitor`.
		PersistentPreRunE:  func(*cobra.Command, []string) error { return prof.start() },
		PersistentPostRunE: func(*cobra.Command, []string) error { return prof.stop() },
	}
	root.PersistentFlags().StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile to this file")
	root.PersistentFlags().StringVar(&prof.mem, "memprofile", "", "write a heap profile to this file when the command ends")
	root.AddCommand(newVersionCmd())
	root.AddCommand(newDemoCmd())
	root.AddCommand(newConfigCmd())
	root.AddCommand(newDiscoverCmd())
	root.AddCommand(newMonitorCmd())
	root.AddCommand(newFailoverCmd())
	root.AddCommand(newSwitchoverCmd())
	root.AddCommand(newActCmd())
	root.AddCommand(newRestoreCmd())
	root.AddCommand(newClientCmd())
	root.AddCommand(newSlaposCmd())
	root.AddCommand(newKeygenCmd(), newPasswordCmd()) // secrets.go: hash_ secrets
	return root
}

// profiling writes the --cpuprofile and --memprofile files.
type profiling struct {
	cpu, mem string
	cpuFile  *os.File
}

func (p *profiling) start() error {
	if p.cpu == "" {
		return nil
	}
	f, err := os.Create(p.cpu)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	p.cpuFile = f
	return nil
}

func (p *profiling) stop() error {
	if p.cpuFile != nil {
		pprof.StopCPUProfile()
		p.cpuFile.Close()
		p.cpuFile = nil
	}
	if p.mem == "" {
		return nil
	}
	f, err := os.Create(p.mem)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

// commandFirst moves the command name in front of the flags: replication-manager takes its
// flags before the command (SlapOS runs `replication-manager --config F --log-file L ...
// monitor`), cobra wants the command first to know its flags.
func commandFirst(root *cobra.Command, args []string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return args
	}
	var path, rest []string
	cur := root
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			if sub := child(cur, a); sub != nil {
				path, cur = append(path, a), sub
				continue
			}
		}
		rest = append(rest, a)
	}
	return append(path, rest...)
}

func child(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
