// Package configurator turns a database server's tags and resources into its MariaDB
// configuration, and packs it with the proxy configuration into the config.tar.gz bundles
// the orchestrators hand to the servers.
//
// Generation is pure: Generate and GenerateProxy return the bundle's entries (directories,
// files, symlinks) as values; Bundle, ProxyBundle and WriteTarGz only serialise them, and
// Unpack extracts a bundle safely (no entry or symlink may leave the destination).
//
// Every fragment of the catalogue (Catalogue) is written to etc/mysql/replication-manager.d/;
// a tag activates its fragment with a symlink of the same name in etc/mysql/conf.d/, which
// my.cnf includes. MariaDB reads an included directory in file-name order, so the two-digit
// prefixes order the fragments: 01_default_* first, then tag fragments, 99_* last.
// docs/configurator.md has the tag table, the sizing formulas and the layout.
package configurator
