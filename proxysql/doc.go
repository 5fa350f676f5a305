// Package proxysql routes a cluster's traffic through ProxySQL.
//
// It has three parts:
//
//   - Admin, a client of ProxySQL's admin interface (a MySQL-protocol port backed by SQLite):
//     it reads and writes mysql_servers, mysql_users and mysql_replication_hostgroups and
//     runs LOAD ... TO RUNTIME and SAVE ... TO DISK. The admin interface understands neither
//     prepared statements nor multi-statements, so every statement is sent alone as text,
//     its values written as SQLite literals by Quote.
//   - Router, the router.Router of one ProxySQL: the writer hostgroup holds the master only,
//     the reader hostgroup the replicas, an offline hostgroup the servers that must not be
//     routed to (docs/proxysql.md has the rules, including how it leaves to ProxySQL the
//     moves its own read_only monitor makes).
//   - GenerateConfig, a pure generator of proxysql.cnf (libconfig syntax) from settings.
//
// The tests run the Router on a real ProxySQL in front of real MariaDB servers
// (internal/testenv.NewProxySQL); package proxysqltest holds a test double of the admin
// interface for fast unit tests, compared with the real one by a contract test.
package proxysql
