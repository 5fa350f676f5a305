package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"replication-manager-pro/config"
)

// newKeygenCmd writes a new encryption key for hash_ secrets, as replication-manager's
// keygen: 16 random bytes, mode 0600, never over an existing key unless --overwrite.
func newKeygenCmd() *cobra.Command {
	var path string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new key for hash_ secrets (monitoring-key-path)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := config.GenerateKey()
			if err != nil {
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if overwrite {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(path, flags, 0o600)
			if errors.Is(err, os.ErrExist) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s exists: secrets encrypted with it would be lost; --overwrite replaces it\n", path)
				return exitError{code: 1}
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key written to %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "keypath", config.Defaults().MonitoringKeyPath, "key file (monitoring-key-path)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace an existing key file")
	return cmd
}

// newPasswordCmd prints a secret in the hash_ form replication-manager's configuration
// accepts. The secret is read from standard input (one line), never from the command line,
// which other users of the machine can read.
func newPasswordCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "password",
		Short: "Encrypt a secret read from standard input into the hash_ form (key: --keypath)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "the secret is read from standard input, not from the command line (other users can read process arguments)")
				return exitError{code: 2}
			}
			key, err := config.ReadKeyFile(path)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "key file %s: %v\n", path, err)
				return exitError{code: 1}
			}
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			secret := strings.TrimRight(line, "\r\n")
			if secret == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "no secret on standard input")
				return exitError{code: 1}
			}
			h, err := config.EncryptSecret(key, secret)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "keypath", config.Defaults().MonitoringKeyPath, "key file (monitoring-key-path)")
	return cmd
}
