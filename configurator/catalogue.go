package configurator

// The fragments below were written for MariaDB 10.11 from its documentation of system
// variables and option files. Variables of plugins carry the loose_ prefix so that a
// missing plugin package never stops mariadbd; the plugins themselves are loaded with
// plugin_load_add, which only logs an error when the library is absent.

// defaults are written and activated for every server.
var defaults = []defaultFragment{
	{"01_default_memory.cnf", `[mysqld]
# Global buffers sized from prov-db-memory ({{.S.MemoryMB}} MB) and prov-db-memory-shared-pct.
innodb_buffer_pool_size = {{.S.BufferPoolMB}}M
innodb_log_file_size = {{.S.LogFileMB}}M
innodb_log_buffer_size = {{.S.LogBufferMB}}M
query_cache_size = {{.S.QueryCacheMB}}M
{{- if eq .S.QueryCacheMB 0}}
query_cache_type = OFF
{{- end}}
thread_cache_size = 64
table_open_cache = 2000
`, "buffer pool, redo log, log buffer and query cache sizes"},
	{"01_default_network.cnf", `[mysqld]
port = {{.Port}}
socket = {{.Socket}}
max_connections = {{.S.MaxConnections}}
skip_name_resolve = ON
max_allowed_packet = 64M
connect_timeout = 10
wait_timeout = 28800
back_log = 512
`, "port, socket, max_connections, no DNS lookups"},
	{"01_default_security.cnf", `[mysqld]
local_infile = OFF
symbolic_links = OFF
`, "no LOAD DATA LOCAL, no symbolic links of tables"},
	{"01_default_log.cnf", `[mysqld]
log_warnings = 2
slow_query_log = ON
long_query_time = 1
log_slow_admin_statements = ON
log_slow_slave_statements = ON
innodb_print_all_deadlocks = ON
`, "slow query log (1 s), deadlocks and warnings in the error log"},
	{"01_default_optimizer.cnf", `[mysqld]
use_stat_tables = PREFERABLY_FOR_QUERIES
optimizer_use_condition_selectivity = 4
`, "engine-independent statistics used by the optimizer"},
	{"01_default_path.cnf", `[mysqld]
datadir = {{.Datadir}}
ignore_db_dirs = .system
tmpdir = {{.SystemDir}}/tmp
log_error = {{.SystemDir}}/logs/error.log
slow_query_log_file = {{.SystemDir}}/logs/slow-query.log
general_log_file = {{.SystemDir}}/logs/general.log
innodb_log_group_home_dir = {{.SystemDir}}/innodb/redo
innodb_undo_directory = {{.SystemDir}}/innodb/undo
log_bin = {{.SystemDir}}/repl/log-bin
log_bin_index = {{.SystemDir}}/repl/log-bin.index
relay_log = {{.SystemDir}}/repl/relay-bin
relay_log_index = {{.SystemDir}}/repl/relay-bin.index
aria_log_dir_path = {{.SystemDir}}/aria
`, "datadir, tmpdir, logs, redo/undo, binary and relay logs under .system (not a database: ignore_db_dirs)"},
	{"01_default_replication.cnf", `[mysqld]
server_id = {{.ServerID}}
gtid_domain_id = {{.DomainID}}
report_host = {{.Host}}
report_port = {{.Port}}
log_slave_updates = ON
binlog_format = MIXED
binlog_checksum = CRC32
sync_binlog = 1
expire_logs_days = {{.S.ExpireLogsDays}}
relay_log_recovery = ON
slave_net_timeout = 60
`, "server_id, gtid_domain_id, binary log kept for expire_logs_days, replicas log their updates"},
	{"01_engine_aria.cnf", `[mysqld]
aria_pagecache_buffer_size = {{.S.AriaPagecacheMB}}M
aria_recover_options = BACKUP,QUICK
`, "Aria page cache"},
	{"01_engine_myisam.cnf", `[mysqld]
key_buffer_size = {{.S.KeyBufferMB}}M
key_cache_segments = {{.S.KeyCacheSegments}}
myisam_recover_options = BACKUP,QUICK
`, "MyISAM key cache"},
	{"01_with_rep_parallelconservative.cnf", `[mysqld]
slave_parallel_threads = {{.S.ParallelThreads}}
slave_parallel_mode = conservative
`, "parallel replication, conservative mode, one thread per core"},
}

var catalogue = []Tag{
	// replication
	{Name: "semisync", Family: FamilyReplication, Fragment: "01_with_rep_semisync.cnf", Effect: "semi-synchronous replication, master waits after sync (built into 10.11)", Body: `[mysqld]
rpl_semi_sync_master_enabled = ON
rpl_semi_sync_slave_enabled = ON
rpl_semi_sync_master_timeout = 10000
rpl_semi_sync_master_wait_point = AFTER_SYNC
`},
	{Name: "multidomains", Family: FamilyReplication, Fragment: "01_with_rep_multidomains.cnf", Effect: "several GTID domains: duplicates from other sources ignored", Body: `[mysqld]
gtid_ignore_duplicates = ON
`},
	{Name: "nologslaveupdates", Family: FamilyReplication, Fragment: "01_no_rep_logslaveupdates.cnf", Effect: "replicas do not binlog what they apply", Body: `[mysqld]
log_slave_updates = OFF
`},
	{Name: "gtidstrict", Family: FamilyReplication, Fragment: "99_with_rep_gtidstrictmode.cnf", Effect: "gtid_strict_mode: out-of-order GTIDs stop replication", Body: `[mysqld]
gtid_strict_mode = ON
`},
	{Name: "nobinlog", Family: FamilyReplication, Fragment: "01_no_rep_binlog.cnf", Effect: "no binary log", Body: `[mysqld]
skip_log_bin
`},
	{Name: "noslavestart", Family: FamilyReplication, Fragment: "01_no_rep_slavestart.cnf", Effect: "replication threads not started with the server", Body: `[mysqld]
skip_slave_start = ON
`},
	{Name: "idempotent", Family: FamilyReplication, Fragment: "01_with_rep_idempotent.cnf", Effect: "replicas ignore duplicate-key and missing-row errors", Body: `[mysqld]
slave_exec_mode = IDEMPOTENT
`},
	{Name: "row", Family: FamilyReplication, Fragment: "20_with_rep_row.cnf", Effect: "row-based binary log with full images", Body: `[mysqld]
binlog_format = ROW
binlog_row_image = FULL
`},
	{Name: "statement", Family: FamilyReplication, Fragment: "20_with_rep_statement.cnf", Effect: "statement-based binary log", Body: `[mysqld]
binlog_format = STATEMENT
`},
	{Name: "mixed", Family: FamilyReplication, Fragment: "20_with_rep_mixed.cnf", Effect: "mixed binary log format (the default)", Body: `[mysqld]
binlog_format = MIXED
`},
	{Name: "lossyconv", Family: FamilyReplication, Fragment: "01_with_rep_lossyconv.cnf", Effect: "row events may convert column types, lossy or not", Body: `[mysqld]
slave_type_conversions = ALL_LOSSY,ALL_NON_LOSSY
`},
	{Name: "trustfunctioncreators", Family: FamilyReplication, Fragment: "01_with_rep_trustfunctioncreators.cnf", Effect: "stored functions may be created with the binary log on", Body: `[mysqld]
log_bin_trust_function_creators = ON
`},
	{Name: "optimistic", Family: FamilyReplication, Fragment: "02_with_rep_paralleloptimistic.cnf", Effect: "optimistic parallel replication", Body: `[mysqld]
slave_parallel_mode = optimistic
`},
	{Name: "aggressive", Family: FamilyReplication, Fragment: "02_with_rep_parallelaggressive.cnf", Effect: "aggressive parallel replication", Body: `[mysqld]
slave_parallel_mode = aggressive
`},
	{Name: "minimal", Family: FamilyReplication, Fragment: "02_with_rep_parallelminimal.cnf", Effect: "minimal parallel replication (commit only)", Body: `[mysqld]
slave_parallel_mode = minimal
`},
	{Name: "serialize", Family: FamilyReplication, Fragment: "02_with_rep_parallelserialized.cnf", Effect: "no parallel replication", Body: `[mysqld]
slave_parallel_mode = none
slave_parallel_threads = 0
`},
	{Name: "nologslavestatement", Family: FamilyReplication, Fragment: "01_no_rep_annotaterows.cnf", Effect: "row events carry no statement text", Body: `[mysqld]
binlog_annotate_row_events = OFF
replicate_annotate_row_events = OFF
`},
	{Name: "nosyncbinlog", Family: FamilyReplication, Fragment: "01_no_rep_syncbinlog.cnf", Effect: "binary log not synced at each commit", Body: `[mysqld]
sync_binlog = 0
`},
	{Name: "noalter2phase", Family: FamilyReplication, Fragment: "01_no_rep_alter2phase.cnf", Effect: "ALTER TABLE replicated after it completes (no two-phase)", Body: `[mysqld]
binlog_alter_two_phase = OFF
`},
	{Name: "mysqlgtid", Family: FamilyReplication, Unsupported: "MySQL GTIDs (gtid_mode) do not exist in MariaDB"},
	{Name: "wsrep", Family: FamilyReplication, Unsupported: "Galera clusters are not provisioned by replication-manager-pro"},
	{Name: "grouprep", Family: FamilyReplication, Unsupported: "MySQL group replication does not exist in MariaDB"},

	// engine
	{Name: "innodb", Family: FamilyEngine, Fragment: "01_engine_innodb.cnf", Effect: "InnoDB default engine, I/O sized from iops and cores, O_DIRECT", Body: `[mysqld]
default_storage_engine = InnoDB
innodb_file_per_table = ON
innodb_flush_method = O_DIRECT
innodb_flush_log_at_trx_commit = 1
innodb_doublewrite = ON
innodb_autoinc_lock_mode = 2
innodb_io_capacity = {{.S.IOCapacity}}
innodb_io_capacity_max = {{.S.IOCapacityMax}}
innodb_read_io_threads = {{.S.ReadIOThreads}}
innodb_write_io_threads = {{.S.WriteIOThreads}}
innodb_purge_threads = {{.S.PurgeThreads}}
innodb_max_dirty_pages_pct = {{.S.MaxDirtyPct}}
innodb_max_dirty_pages_pct_lwm = {{.S.MaxDirtyPctLwm}}
`},
	{Name: "myrocks", Family: FamilyEngine, Fragment: "01_engine_rocksdb.cnf", Plugin: "ha_rocksdb", Effect: "MyRocks engine (package mariadb-plugin-rocksdb)", Body: `[mysqld]
plugin_load_add = ha_rocksdb
loose_rocksdb_block_cache_size = {{.S.RocksDBCacheMB}}M
`},
	{Name: "spider", Family: FamilyEngine, Fragment: "01_engine_spider.cnf", Plugin: "ha_spider", Effect: "Spider engine (package mariadb-plugin-spider)", Body: `[mysqld]
plugin_load_add = ha_spider
`},
	{Name: "sphinx", Family: FamilyEngine, Fragment: "01_engine_sphinx.cnf", Plugin: "ha_sphinx", Effect: "SphinxSE engine", Body: `[mysqld]
plugin_load_add = ha_sphinx
`},
	{Name: "oqgraph", Family: FamilyEngine, Fragment: "01_engine_oqgraph.cnf", Plugin: "ha_oqgraph", Effect: "OQGraph engine (package mariadb-plugin-oqgraph)", Body: `[mysqld]
plugin_load_add = ha_oqgraph
`},
	{Name: "connect", Family: FamilyEngine, Fragment: "01_engine_connect.cnf", Plugin: "ha_connect", Effect: "CONNECT engine (package mariadb-plugin-connect)", Body: `[mysqld]
plugin_load_add = ha_connect
`},
	{Name: "blackhole", Family: FamilyEngine, Fragment: "01_engine_blackhole.cnf", Plugin: "ha_blackhole", Aliases: []string{"backhole"}, Effect: "BLACKHOLE engine", Body: `[mysqld]
plugin_load_add = ha_blackhole
`},
	{Name: "s3", Family: FamilyEngine, Fragment: "01_engine_s3.cnf", Plugin: "ha_s3", Effect: "S3 engine (package mariadb-plugin-s3; credentials go to custom.d)", Body: `[mysqld]
plugin_load_add = ha_s3
loose_s3_pagecache_buffer_size = {{.S.S3PagecacheMB}}M
`},
	{Name: "mroonga", Family: FamilyEngine, Fragment: "01_engine_mroonga.cnf", Plugin: "ha_mroonga", Effect: "Mroonga full-text engine (package mariadb-plugin-mroonga)", Body: `[mysqld]
plugin_load_add = ha_mroonga
loose_mroonga_log_file = {{.SystemDir}}/logs/groonga.log
`},
	{Name: "archive", Family: FamilyEngine, Fragment: "01_engine_archive.cnf", Plugin: "ha_archive", Effect: "ARCHIVE engine", Body: `[mysqld]
plugin_load_add = ha_archive
`},
	{Name: "sequence", Family: FamilyEngine, Effect: "none: the SEQUENCE engine is built into MariaDB"},
	{Name: "tokudb", Family: FamilyEngine, Unsupported: "TokuDB was removed in MariaDB 10.6"},
	{Name: "mcs", Family: FamilyEngine, Unsupported: "ColumnStore is not packaged for this platform"},

	// network
	{Name: "noquerycache", Family: FamilyNetwork, Fragment: "99_no_net_querycache.cnf", Effect: "query cache off", Body: `[mysqld]
query_cache_type = OFF
query_cache_size = 0
`},
	{Name: "threadpool", Family: FamilyNetwork, Fragment: "01_with_net_threadpool.cnf", Effect: "thread pool, one group per core", Body: `[mysqld]
thread_handling = pool-of-threads
thread_pool_size = {{.S.Cores}}
`},
	{Name: "resolvdns", Family: FamilyNetwork, Fragment: "01_with_net_resolvdns.cnf", Effect: "client host names resolved (grants by name)", Body: `[mysqld]
skip_name_resolve = OFF
`},
	{Name: "proxyprotocol", Family: FamilyNetwork, Fragment: "01_with_net_proxyprotocol.cnf", Effect: "PROXY protocol headers accepted from local networks", Body: `[mysqld]
proxy_protocol_networks = localhost,127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7
`},
	{Name: "bind", Family: FamilyNetwork, Fragment: "99_with_net_bind.cnf", Effect: "listen on the server's own address only", Body: `[mysqld]
bind_address = {{.Host}}
`},
	{Name: "nobind", Family: FamilyNetwork, Fragment: "99_no_net_bind.cnf", Effect: "listen on every IPv4 and IPv6 address", Body: `[mysqld]
bind_address = *
`},

	// log
	{Name: "slow", Family: FamilyLog, Effect: "none: the slow query log is on by default (01_default_log.cnf); nologslowqueries turns it off"},
	{Name: "audit", Family: FamilyLog, Fragment: "01_with_log_audit.cnf", Plugin: "server_audit", Effect: "audit log of connections and queries", Body: `[mysqld]
plugin_load_add = server_audit
loose_server_audit_logging = ON
loose_server_audit_events = CONNECT,QUERY_DDL,QUERY_DCL
loose_server_audit_output_type = file
loose_server_audit_file_path = {{.SystemDir}}/logs/audit.log
`},
	{Name: "general", Family: FamilyLog, Fragment: "01_with_log_general.cnf", Effect: "general query log", Body: `[mysqld]
general_log = ON
`},
	{Name: "sqlerror", Family: FamilyLog, Fragment: "01_with_log_sqlerror.cnf", Plugin: "sql_errlog", Effect: "statements that fail are logged to logs/sql-error.log", Body: `[mysqld]
plugin_load_add = sql_errlog
loose_sql_error_log_filename = {{.SystemDir}}/logs/sql-error.log
loose_sql_error_log_rotations = 5
`},
	{Name: "pfs", Family: FamilyLog, Fragment: "01_with_log_pfs.cnf", Effect: "performance schema with statement history", Body: `[mysqld]
performance_schema = ON
performance_schema_consumer_events_statements_history = ON
performance_schema_consumer_events_stages_current = ON
performance_schema_instrument = 'wait/lock/metadata/sql/mdl=ON'
`},
	{Name: "userstats", Family: FamilyLog, Fragment: "01_with_log_userstats.cnf", Effect: "user, client, table and index statistics", Body: `[mysqld]
userstat = ON
`},
	{Name: "metadatalocks", Family: FamilyLog, Fragment: "01_with_log_metadatalocks.cnf", Plugin: "metadata_lock_info", Effect: "information_schema.METADATA_LOCK_INFO", Body: `[mysqld]
plugin_load_add = metadata_lock_info
`},
	{Name: "logtotable", Family: FamilyLog, Fragment: "01_with_log_logtotable.cnf", Effect: "slow and general logs written to tables", Body: `[mysqld]
log_output = TABLE
`},
	{Name: "nowarnings", Family: FamilyLog, Fragment: "01_no_log_warnings.cnf", Effect: "no warnings in the error log", Body: `[mysqld]
log_warnings = 0
`},
	{Name: "nologslowqueries", Family: FamilyLog, Fragment: "01_no_log_slowqueries.cnf", Effect: "slow query log off", Body: `[mysqld]
slow_query_log = OFF
`},
	{Name: "nologslowslavequeries", Family: FamilyLog, Fragment: "01_no_log_slowslavequeries.cnf", Effect: "replicated statements not in the slow log", Body: `[mysqld]
log_slow_slave_statements = OFF
`},
	{Name: "nologslowddlqueries", Family: FamilyLog, Fragment: "01_no_log_slowddlqueries.cnf", Effect: "administrative statements not in the slow log", Body: `[mysqld]
log_slow_admin_statements = OFF
`},
	{Name: "nologdeadlocks", Family: FamilyLog, Fragment: "01_no_log_deadlocks.cnf", Effect: "deadlocks not printed to the error log", Body: `[mysqld]
innodb_print_all_deadlocks = OFF
`},

	// disk
	{Name: "smallredolog", Family: FamilyDisk, Effect: "sizing: innodb_log_file_size = 128M (01_default_memory.cnf)"},
	{Name: "nodoublewrite", Family: FamilyDisk, Fragment: "01_no_disk_doublewrite.cnf", Effect: "InnoDB doublewrite buffer off", Body: `[mysqld]
innodb_doublewrite = OFF
`},
	{Name: "compressbinlog", Family: FamilyDisk, Fragment: "01_with_disk_compressbinlog.cnf", Effect: "binary log events over 256 bytes compressed", Body: `[mysqld]
log_bin_compress = ON
log_bin_compress_min_len = 256
`},
	{Name: "nodurable", Family: FamilyDisk, Fragment: "01_no_disk_durable.cnf", Effect: "redo and binary logs flushed once a second, not at commit", Body: `[mysqld]
innodb_flush_log_at_trx_commit = 2
sync_binlog = 0
`},
	{Name: "noodirect", Family: FamilyDisk, Fragment: "02_no_disk_odirect.cnf", Effect: "InnoDB writes through the page cache (fsync)", Body: `[mysqld]
innodb_flush_method = fsync
`},
	{Name: "autodefrag", Family: FamilyDisk, Fragment: "01_with_disk_autodefrag.cnf", Effect: "InnoDB defragmentation on OPTIMIZE TABLE", Body: `[mysqld]
innodb_defragment = ON
`},
	{Name: "compresstables", Family: FamilyDisk, Fragment: "01_with_disk_compresstables.cnf", Effect: "InnoDB page compression of new tables", Body: `[mysqld]
innodb_compression_default = ON
innodb_compression_algorithm = zlib
`},
	{Name: "ssd", Family: FamilyDisk, Fragment: "02_with_disk_ssd.cnf", Effect: "no neighbour-page flushing", Body: `[mysqld]
innodb_flush_neighbors = 0
`},
	{Name: "zfs", Family: FamilyDisk, Fragment: "02_with_disk_zfs.cnf", Effect: "copy-on-write filesystem: no doublewrite, no O_DIRECT", Body: `[mysqld]
innodb_doublewrite = OFF
innodb_flush_method = fsync
innodb_flush_neighbors = 0
`},
	{Name: "diskmonitor", Family: FamilyDisk, Fragment: "01_with_disk_diskmonitor.cnf", Plugin: "disks", Effect: "information_schema.DISKS (free space)", Body: `[mysqld]
plugin_load_add = disks
`},
	{Name: "relayspacelimit", Family: FamilyDisk, Fragment: "01_with_disk_relayspacelimit.cnf", Effect: "relay logs limited to 10 MB", Body: `[mysqld]
relay_log_space_limit = 10M
`},
	{Name: "noadaptiveflush", Family: FamilyDisk, Fragment: "01_no_disk_adaptiveflush.cnf", Aliases: []string{"noadaptatiiveflush", "noadaptativeflush"}, Effect: "InnoDB adaptive flushing off", Body: `[mysqld]
innodb_adaptive_flushing = OFF
`},
	{Name: "splitundolog", Family: FamilyDisk, Fragment: "01_with_disk_splitundolog.cnf", Effect: "undo logs in 3 tablespaces (takes effect on a new datadir)", Body: `[mysqld]
innodb_undo_tablespaces = 3
`},
	{Name: "nosplitpath", Family: FamilyDisk, Fragment: "02_no_disk_splitpath.cnf", Effect: "redo, undo, binary and relay logs in the datadir instead of .system", Body: `[mysqld]
innodb_log_group_home_dir = {{.Datadir}}
innodb_undo_directory = {{.Datadir}}
log_bin = {{.Datadir}}/log-bin
log_bin_index = {{.Datadir}}/log-bin.index
relay_log = {{.Datadir}}/relay-bin
relay_log_index = {{.Datadir}}/relay-bin.index
`},
	{Name: "notmpdisk", Family: FamilyDisk, Fragment: "02_no_disk_tmp.cnf", Effect: "temporary files in /dev/shm", Body: `[mysqld]
tmpdir = /dev/shm
`},

	// security
	{Name: "ssl", Family: FamilySecurity, Fragment: "01_with_sec_ssl.cnf", Effect: "TLS with the cluster certificates in etc/mysql/ssl", Body: `[mysqld]
ssl_ca = {{.SSLDir}}/ca-cert.pem
ssl_cert = {{.SSLDir}}/server-cert.pem
ssl_key = {{.SSLDir}}/server-key.pem
tls_version = TLSv1.2,TLSv1.3
`},
	{Name: "readonly", Family: FamilySecurity, Fragment: "99_with_opt_readonly.cnf", Effect: "starts read-only (replication-manager makes the master writable)", Body: `[mysqld]
read_only = ON
`},
	{Name: "pwdchecksimple", Family: FamilySecurity, Fragment: "01_with_sec_pwdchecksimple.cnf", Plugin: "simple_password_check", Effect: "password strength checks", Body: `[mysqld]
plugin_load_add = simple_password_check
`},
	{Name: "pwdcheckcracklib", Family: FamilySecurity, Fragment: "01_with_sec_pwdcheckcracklib.cnf", Plugin: "cracklib_password_check", Effect: "dictionary password checks (package mariadb-plugin-cracklib-password-check)", Body: `[mysqld]
plugin_load_add = cracklib_password_check
`},
	{Name: "localinfile", Family: FamilySecurity, Fragment: "01_with_sec_localinfile.cnf", Effect: "LOAD DATA LOCAL allowed", Body: `[mysqld]
local_infile = ON
`},
	{Name: "ed25519", Family: FamilySecurity, Fragment: "01_with_sec_ed25519.cnf", Plugin: "auth_ed25519", Effect: "ed25519 authentication plugin", Body: `[mysqld]
plugin_load_add = auth_ed25519
`},
	{Name: "keyfileencrypt", Family: FamilySecurity, Unsupported: "data-at-rest encryption needs a key file this bundle does not manage"},
	{Name: "noauth", Family: FamilySecurity, Unsupported: "it would start the server without privilege checks"},

	// optimizer
	{Name: "lowercasetable", Family: FamilyOptimizer, Fragment: "01_with_opt_lowercasetable.cnf", Effect: "table names stored in lower case (set before the datadir is created)", Body: `[mysqld]
lower_case_table_names = 1
`},
	{Name: "sqlmodeunstrict", Family: FamilyOptimizer, Fragment: "01_with_opt_sqlmodeunstrict.cnf", Effect: "non-strict SQL mode", Body: `[mysqld]
sql_mode = NO_ENGINE_SUBSTITUTION
`},
	{Name: "sqlmodeoracle", Family: FamilyOptimizer, Fragment: "01_with_opt_sqlmodeoracle.cnf", Effect: "Oracle compatibility SQL mode", Body: `[mysqld]
sql_mode = ORACLE
`},
	{Name: "noautocommit", Family: FamilyOptimizer, Fragment: "01_no_opt_autocommit.cnf", Effect: "sessions start with autocommit off", Body: `[mysqld]
autocommit = OFF
`},
	{Name: "eits", Family: FamilyOptimizer, Fragment: "01_with_opt_eits.cnf", Effect: "engine-independent statistics collected and used", Body: `[mysqld]
use_stat_tables = PREFERABLY
histogram_size = 254
`},
	{Name: "histograms", Family: FamilyOptimizer, Fragment: "01_with_opt_histograms.cnf", Effect: "JSON histograms", Body: `[mysqld]
histogram_size = 254
histogram_type = JSON_HB
`},
	{Name: "nodeadlockdetect", Family: FamilyOptimizer, Fragment: "01_no_opt_deadlockdetect.cnf", Effect: "InnoDB deadlock detection off (lock wait timeout decides)", Body: `[mysqld]
innodb_deadlock_detect = OFF
`},
	{Name: "nestedjoin", Family: FamilyOptimizer, Fragment: "01_with_opt_nestedjoin.cnf", Effect: "block nested-loop join buffers only", Body: `[mysqld]
join_cache_level = 2
`},
	{Name: "hashjoin", Family: FamilyOptimizer, Fragment: "01_with_opt_hashjoin.cnf", Effect: "hashed join buffers", Body: `[mysqld]
join_cache_level = 4
optimizer_switch = 'join_cache_hashed=on'
`},
	optSwitch("noicp", "01_no_opt_icp.cnf", "index_condition_pushdown=off", "index condition pushdown off"),
	optSwitch("nointoexists", "01_no_opt_intoexists.cnf", "in_to_exists=off", "IN-to-EXISTS subquery strategy off"),
	optSwitch("noderivedmerge", "01_no_opt_derivedmerge.cnf", "derived_merge=off", "derived tables not merged"),
	optSwitch("noderivedwithkeys", "01_no_opt_derivedwithkeys.cnf", "derived_with_keys=off", "no keys on derived tables"),
	optSwitch("firstmatch", "01_with_opt_firstmatch.cnf", "firstmatch=on", "FirstMatch semi-join strategy on"),
	optSwitch("extendedkeys", "01_with_opt_extendedkeys.cnf", "extended_keys=on", "secondary keys extended with the primary key"),
	optSwitch("loosescan", "01_with_opt_loosescan.cnf", "loosescan=on", "LooseScan semi-join strategy on"),
	optSwitch("subquerycache", "01_with_opt_subquerycache.cnf", "subquery_cache=on", "subquery cache on"),
	optSwitch("nomrr", "01_no_opt_mrr.cnf", "mrr=off", "multi-range read off"),
	optSwitch("noouterjoincache", "01_no_opt_outerjoincache.cnf", "outer_join_with_cache=off", "no join buffer for outer joins"),
	optSwitch("semijoincache", "01_with_opt_semijoincache.cnf", "semijoin_with_cache=on", "join buffer for semi-joins"),
	optSwitch("notableelimination", "01_no_opt_tableelimination.cnf", "table_elimination=off", "table elimination off"),
	optSwitch("nobloomfilter", "01_no_opt_bloomfilter.cnf", "rowid_filter=off", "rowid filters off"),
	optSwitch("nodcp", "01_no_opt_dcp.cnf", "condition_pushdown_for_derived=off", "no condition pushdown into derived tables"),
	optSwitch("noecp", "01_no_opt_ecp.cnf", "engine_condition_pushdown=off", "no engine condition pushdown"),
	optSwitch("noscp", "01_no_opt_scp.cnf", "condition_pushdown_for_subquery=off", "no condition pushdown into subqueries"),
	optSwitch("nohcp", "01_no_opt_hcp.cnf", "condition_pushdown_from_having=off", "no condition pushdown from HAVING"),
	optSwitch("nolateralderived", "01_no_opt_lateralderived.cnf", "split_materialized=off", "no split (lateral) materialisation"),
	optSwitch("imsi", "01_with_opt_imsi.cnf", "index_merge_sort_intersection=on", "index merge sort-intersection on"),
	{Name: "utctime", Family: FamilyOptimizer, Fragment: "01_with_opt_utctime.cnf", Effect: "server time zone UTC", Body: `[mysqld]
default_time_zone = '+00:00'
`},
	isolation("readcommitted", "READ-COMMITTED"),
	isolation("readdirty", "READ-UNCOMMITTED"),
	isolation("readsnapshot", "REPEATABLE-READ"),
	isolation("readserialized", "SERIALIZABLE"),
	{Name: "trace", Family: FamilyOptimizer, Fragment: "01_with_opt_trace.cnf", Effect: "optimizer trace on", Body: `[mysqld]
optimizer_trace = 'enabled=on'
`},
	{Name: "noforcepk", Family: FamilyOptimizer, Fragment: "01_no_opt_forcepk.cnf", Effect: "tables without a primary key allowed (the server's default, stated)", Body: `[mysqld]
innodb_force_primary_key = OFF
`},

	// charset
	charset("bm4ci", "utf8mb4", "utf8mb4_general_ci"),
	charset("bm4cs", "utf8mb4", "utf8mb4_bin"),
	charset("utf8ci", "utf8mb3", "utf8mb3_general_ci"),
	charset("utf8cs", "utf8mb3", "utf8mb3_bin"),
	{Name: "nohandshake", Family: FamilyCharset, Fragment: "01_no_charset_handshake.cnf", Effect: "clients get the server character set whatever they ask", Body: `[mysqld]
character_set_client_handshake = OFF
`},

	// memory
	{Name: "interleave", Family: FamilyMemory, Fragment: "01_with_mem_interleave.cnf", Effect: "buffer pool interleaved across NUMA nodes (when built with NUMA)", Body: `[mysqld]
loose_innodb_numa_interleave = ON
`},

	// system: they choose where my.cnf finds its includes (see Layout), no fragment.
	{Name: "linux", Family: FamilySystem, Effect: "none (operating system)"},
	{Name: "osx", Family: FamilySystem, Effect: "none (operating system)"},
	{Name: "pkg", Family: FamilySystem, Effect: "my.cnf includes the bundle's own conf.d and custom.d"},
	{Name: "docker", Family: FamilySystem, Effect: "my.cnf includes /etc/mysql/conf.d and custom.d (containers); partition paths on slapos and local"},
	{Name: "deb", Family: FamilySystem, Effect: "as docker, for a Debian package install"},
	{Name: "rpm", Family: FamilySystem, Effect: "as docker, for an RPM package install"},
}

func optSwitch(name, fragment, flag, effect string) Tag {
	return Tag{Name: name, Family: FamilyOptimizer, Fragment: fragment, Effect: effect + " (optimizer_switch " + flag + ")",
		Body: "[mysqld]\noptimizer_switch = '" + flag + "'\n"}
}

func isolation(name, level string) Tag {
	return Tag{Name: name, Family: FamilyOptimizer, Fragment: "01_with_opt_" + name + ".cnf", Effect: "default isolation level " + level,
		Body: "[mysqld]\ntransaction_isolation = " + level + "\n"}
}

func charset(name, cs, coll string) Tag {
	return Tag{Name: name, Family: FamilyCharset, Fragment: "01_with_charset_" + name + ".cnf", Effect: "server character set " + cs + ", collation " + coll,
		Body: "[mysqld]\ncharacter_set_server = " + cs + "\ncollation_server = " + coll + "\n"}
}
