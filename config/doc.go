// Package config reads replication-manager's TOML configuration: the keys with their
// defaults (one Settings struct, the single source of truth, turned into a registry by
// reflection), the [Default] + one-table-per-cluster layout with an include directory and
// [saved-*] tables, command-line overrides, validation that collects every problem with its
// file, table and key, and masking of secrets in every printed form.
//
// Precedence, lowest first: built-in defaults < [saved-default] < [Default] <
// DEFAULT_<KEY> environment variables < [saved-<cluster>] < [<cluster>] < command-line
// overrides.
//
// Typical use:
//
//	cfg, err := config.Load(path, config.Options{Overrides: config.Overrides(fs)})
//	if err != nil { /* err is config.Problems: print one per line */ }
//	for _, c := range cfg.Clusters { hosts, _ := c.Settings.Hosts(); ... }
//
// docs/configuration.md describes the layout and lists every key.
package config
