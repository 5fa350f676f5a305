package configurator

import (
	"fmt"
	"strings"
)

// The job account: the login etc/mysql/dbjob.cnf carries in a bundle served without a
// partition credential (slapos-legacy-anonymous-routes), in place of the
// db-servers-credential (an ALL PRIVILEGES ... WITH GRANT OPTION account).
//
// The partition's job runner (SlapOS' dbjobs cron script) logs in through the local socket
// and: reads and flips rows of replication_manager_schema.jobs; runs logical backups
// (mariadb-dump --single-transaction, with events, routines, triggers and the binary log
// position); runs physical backups (mariabackup --backup); collects the error and slow query
// logs (FLUSH LOGS). JobGrants is exactly that. It cannot write user data, change
// variables, manage accounts, stop the server or connect from another host (the account is
// @localhost). Jobs that restore data (reseed*, flashback*: a dump replayed into the server)
// need the admin account and fail under the job account: serve bundles with partition
// credentials to run them.
const (
	JobUser = "repman_job"
	JobHost = "localhost"
)

// JobGrants are the privileges of JobUser@JobHost, each a GRANT clause without TO.
var JobGrants = []string{
	// mariadb-dump (SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES; RELOAD and
	// REPLICATION CLIENT for --master-data/--flush-logs), mariabackup (RELOAD, PROCESS,
	// LOCK TABLES, REPLICATION CLIENT, SLAVE MONITOR for --slave-info), FLUSH LOGS (RELOAD).
	"SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.*",
	// the job queue: dbjobs marks rows taken, running and done, on replicas too: READ_ONLY
	// ADMIN lets those updates through read_only. It grants no table privilege, but it also
	// allows SET GLOBAL read_only, which the manager enforces again on replicas
	// (failover-readonly-state).
	"UPDATE ON replication_manager_schema.jobs",
	"READ_ONLY ADMIN ON *.*",
}

// JobsTableSQL creates replication_manager_schema.jobs as replication-manager does
// (repman-compat.md F.4), so that the table-level grant of JobGrants can be given before the
// manager first queues a job.
const JobsTableSQL = "CREATE DATABASE IF NOT EXISTS replication_manager_schema;\n" +
	"CREATE TABLE IF NOT EXISTS replication_manager_schema.jobs (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
	"task VARCHAR(20), port INT, server VARCHAR(255), done TINYINT NOT NULL DEFAULT 0, " +
	"state TINYINT NOT NULL DEFAULT 0, result VARCHAR(1000), start DATETIME, end DATETIME, " +
	"KEY idx1 (task, done), KEY idx2 (result(1), task), KEY idx3 (task, state), UNIQUE KEY (task));\n"

// JobAccountSQL returns the statements that create (or update) the job account with
// password on a master, to be replicated to every replica (run them with the binary log
// on): the jobs table, the account and its grants. The text holds the password: never log
// it.
func JobAccountSQL(password string) string {
	var b strings.Builder
	b.WriteString(JobsTableSQL)
	acct := sqlQuote(JobUser) + "@" + sqlQuote(JobHost)
	fmt.Fprintf(&b, "CREATE USER IF NOT EXISTS %s IDENTIFIED BY %s;\n", acct, sqlQuote(password))
	fmt.Fprintf(&b, "ALTER USER %s IDENTIFIED BY %s;\n", acct, sqlQuote(password))
	for _, g := range JobGrants {
		fmt.Fprintf(&b, "GRANT %s TO %s;\n", g, acct)
	}
	return b.String()
}

// sqlQuote quotes s as a MariaDB string literal.
func sqlQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`, "\x00", `\0`).Replace(s) + "'"
}
