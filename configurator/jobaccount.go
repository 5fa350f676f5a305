package configurator

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
// credentials to run them. The manager makes the account on every database of a cluster
// that serves anonymous bundles (slapos.JobAccountKeeper, with mariadb's EnsureJobAccount).
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
