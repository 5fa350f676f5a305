// Package testenv starts real components for tests: MariaDB servers (Debian's mariadbd) in
// GTID replication clusters on free loopback ports, HAProxy instances, ProxySQL instances
// (NewProxySQL: the binary of ../shared/tools/proxysql, PROXYSQL_BIN or PATH), and network
// namespaces ("hosts") joined by a bridge for multi-host tests.
//
// Everything a helper starts is owned by the calling test: processes are killed and their
// directories removed in t.Cleanup, even when the test fails; child processes also get
// SIGKILL if the test binary dies (Pdeathsig), so none is ever left behind.
//
// Tests that need mariadbd call RequireMariaDB (StartCluster does it) and are skipped with a
// clear message only when the binary is absent or under 'go test -short'. Tests that need
// root (network namespaces) are skipped with "needs root: ..." otherwise.
//
// The only addresses traffic is ever sent to are loopback (127.0.0.1, ::1), the test
// ULA fd00:5eed::/64 and the benchmark range 198.18.0.0/15 on namespaced hosts.
package testenv
