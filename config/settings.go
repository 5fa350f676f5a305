package config

// Settings holds every configuration key of one cluster (or of [Default]).
//
// The struct is the single source of truth: each field's tags give the key name as
// written in TOML files and on the command line (`key`), its built-in default
// (`default`), a one-line meaning (`help`), and `secret:"true"` for values that
// must never be printed (keys ending in -credential(s), -password, -pass or -token
// are secret without the tag). The registry (Keys, Lookup) is built from these
// tags by reflection at init. Field types are string, bool, int or float64 only.
type Settings struct {
	// General
	Title   string `key:"title" default:"" help:"Display title of the cluster (SlapOS writes the cluster name)"`
	Include string `key:"include" default:"" help:"Directory whose *.toml files are merged; only read from [Default] of the main file"`

	// Monitoring
	MonitoringTicker                   float64 `key:"monitoring-ticker" default:"2" min:"0.05" max:"3600" help:"Monitoring interval in seconds; fractions such as 0.2 are allowed"`
	MonitoringAddress                  string  `key:"monitoring-address" default:"localhost" help:"Address databases and agents use to reach this monitor (localhost is resolved to a host IP)"`
	MonitoringDatadir                  string  `key:"monitoring-datadir" default:"/var/lib/replication-manager" help:"Directory for persistent and temporary files"`
	MonitoringSharedir                 string  `key:"monitoring-sharedir" default:"/usr/share/replication-manager" help:"Directory of shared read-only files"`
	MonitoringBasedir                  string  `key:"monitoring-basedir" default:"system" help:"Base directory holding data/ and share/; system uses the system paths"`
	MonitoringSaveConfig               bool    `key:"monitoring-save-config" default:"true" help:"Persist settings changed through the API as [saved-<cluster>] tables"`
	MonitoringWaitRetry                int     `key:"monitoring-wait-retry" default:"60" min:"0" max:"100000" help:"Number of retries before giving up a state transition"`
	MonitoringScheduler                bool    `key:"monitoring-scheduler" default:"false" help:"Enable the internal job scheduler"`
	MonitoringWriteHeartbeat           bool    `key:"monitoring-write-heartbeat" default:"false" help:"Write replication-manager's heartbeat (a view in replication_manager_schema, replaced each tick) on the master and read it on replicas to measure their lag"`
	MonitoringWriteHeartbeatCredential string  `key:"monitoring-write-heartbeat-credential" default:"" help:"user:password writing the heartbeat (monitoring-write-heartbeat, test-inject-traffic); empty uses db-servers-credential"`
	MonitoringIgnoreErrors             string  `key:"monitoring-ignore-errors" default:"" help:"Comma-separated error or warning codes to ignore"`
	MonitoringAlertTrigger             string  `key:"monitoring-alert-trigger" default:"ERR00027,ERR00042,ERR00087" help:"Comma-separated error codes that send an alert"`
	MonitoringSSLCert                  string  `key:"monitoring-ssl-cert" default:"" help:"TLS certificate file for the HTTP server and the API"`
	MonitoringSSLKey                   string  `key:"monitoring-ssl-key" default:"" help:"TLS key file for the HTTP server and the API"`
	MonitoringKeyPath                  string  `key:"monitoring-key-path" default:"/etc/replication-manager/.replication-manager.key" help:"Key file used to decrypt hash_ encrypted secrets"`
	LogFile                            string  `key:"log-file" default:"" help:"Log file path; empty logs to stderr only"`
	LogLevel                           int     `key:"log-level" default:"3" min:"0" max:"7" help:"Log verbosity, 0 (quiet) to 7 (most verbose)"`
	LogRotateMaxSize                   int     `key:"log-rotate-max-size" default:"5" min:"0" max:"102400" help:"Size in MB at which the log file and the event log are rotated"`
	LogRotateMaxBackup                 int     `key:"log-rotate-max-backup" default:"7" min:"0" max:"1000" help:"Number of rotated log and event log files kept"`
	MonitoringMaxClusters              int     `key:"monitoring-max-clusters" default:"64" min:"1" max:"10000" help:"Maximum number of clusters this manager monitors (clusters added through the API included)"`

	// Databases
	DBServersHosts             string `key:"db-servers-hosts" default:"" help:"Comma-separated database hosts host[:port], IPv6 as [addr]:port"`
	DBServersCredential        string `key:"db-servers-credential" default:"root:mariadb" help:"Database administration credential user:password"`
	DBServersPreferedMaster    string `key:"db-servers-prefered-master" default:"" help:"Comma-separated hosts preferred as master; each must be in db-servers-hosts"`
	DBServersIgnoredHosts      string `key:"db-servers-ignored-hosts" default:"" help:"Comma-separated hosts never elected as master"`
	DBServersIgnoredReadonly   string `key:"db-servers-ignored-readonly" default:"" help:"Comma-separated hosts whose read_only state is not enforced"`
	DBServersBackupHosts       string `key:"db-servers-backup-hosts" default:"" help:"Comma-separated hosts preferred for backups"`
	DBServersConnectTimeout    int    `key:"db-servers-connect-timeout" default:"5" min:"1" max:"3600" help:"Database connect timeout in seconds"`
	DBServersReadTimeout       int    `key:"db-servers-read-timeout" default:"3600" min:"0" max:"86400" help:"Database read timeout in seconds"`
	DBServersStateChangeScript string `key:"db-servers-state-change-script" default:"" help:"Script called when a database changes state"`
	DBServersTLSCACert         string `key:"db-servers-tls-ca-cert" default:"" help:"TLS authority certificate for database connections"`
	DBServersTLSClientKey      string `key:"db-servers-tls-client-key" default:"" help:"TLS client key for database connections"`
	DBServersTLSClientCert     string `key:"db-servers-tls-client-cert" default:"" help:"TLS client certificate for database connections"`

	// Replication
	ReplicationCredential       string `key:"replication-credential" default:"root:mariadb" help:"Replication credential user:password"`
	ReplicationSourceName       string `key:"replication-source-name" default:"" help:"Replication connection name (multi-source), empty for the default one"`
	ReplicationUseSSL           bool   `key:"replication-use-ssl" default:"false" help:"Use TLS for replication (MASTER_SSL=1)"`
	ReplicationMultiMaster      bool   `key:"replication-multi-master" default:"false" help:"Topology is multi-master"`
	ReplicationMultiTierSlave   bool   `key:"replication-multi-tier-slave" default:"false" help:"Topology has relay replicas"`
	ReplicationTreeFlatten      bool   `key:"replication-tree-flatten" default:"false" help:"After a failover or switchover every server replicates directly from the new master (relays are not kept)"`
	ReplicationRelayKeepDepth   bool   `key:"replication-relay-keep-depth" default:"false" help:"The replicas of a dead relay move to the most advanced surviving relay of the same source instead of to that source"`
	ReplicationMultiMasterWsrep bool   `key:"replication-multi-master-wsrep" default:"false" help:"Topology is a Galera (wsrep) cluster"`
	ReplicationDelayedHosts     string `key:"replication-delayed-hosts" default:"" help:"Comma-separated hosts replicating with a delay"`
	ReplicationDelayedTime      int    `key:"replication-delayed-time" default:"3600" min:"0" max:"2592000" help:"Delay in seconds of the delayed hosts"`
	TopologyTarget              string `key:"topology-target" default:"" help:"Topology to bootstrap or enforce (e.g. master-slave)"`
	ForceSlaveHeartbeat         bool   `key:"force-slave-heartbeat" default:"true" help:"Set every replica's MASTER_HEARTBEAT_PERIOD to what fast dead-master detection needs (the monitoring ticker, at most force-slave-heartbeat-time); false leaves replicas as they are"`
	ForceSlaveHeartbeatRetry    int    `key:"force-slave-heartbeat-retry" default:"5" min:"0" max:"86400" help:"Replication connect retry count enforced on replicas"`
	ForceSlaveHeartbeatTime     int    `key:"force-slave-heartbeat-time" default:"3" min:"0" max:"3600" help:"Longest replication heartbeat period in seconds set on replicas (force-slave-heartbeat)"`
	CheckReplicationState       bool   `key:"check-replication-state" default:"true" help:"Refuse failover to a replica whose replication is broken"`
	CheckReplicationFilters     bool   `key:"check-replication-filters" default:"true" help:"Refuse election of replicas with replication filters differing from the master"`
	CheckBinlogFilters          bool   `key:"check-binlog-filters" default:"true" help:"Refuse election of replicas with binlog filters differing from the master"`
	CheckReplicationErrantTrx   bool   `key:"check-replication-errant-trx" default:"true" help:"Refuse election of replicas with errant GTIDs"`
	BinlogCopyMode              string `key:"binlog-copy-mode" default:"mysqlbinlog" help:"How binary logs are backed up"`
	BinlogCopyScript            string `key:"binlog-copy-script" default:"" help:"Script used when binlog-copy-mode is script"`

	// Failover
	FailoverMode                          string `key:"failover-mode" default:"manual" help:"manual (an operator triggers failovers) or automatic"`
	FailoverLimit                         int    `key:"failover-limit" default:"5" min:"0" max:"100000" help:"Maximum number of automatic failovers (0 = unlimited)"`
	FailoverTimeLimit                     int    `key:"failover-time-limit" default:"0" min:"0" max:"2592000" help:"Minimum seconds between two automatic failovers (0 = none)"`
	FailoverMaxSlaveDelay                 int    `key:"failover-max-slave-delay" default:"30" min:"0" max:"86400" help:"Maximum replica lag in seconds for a replica to be elected"`
	FailoverRestartUnsafe                 bool   `key:"failover-restart-unsafe" default:"false" help:"Allow a stopped master to restart as master when no replica is usable"`
	FailoverReadonlyState                 bool   `key:"failover-readonly-state" default:"true" help:"Keep replicas read_only"`
	FailoverSuperReadonlyState            bool   `key:"failover-superreadonly-state" default:"false" help:"Keep replicas super_read_only (MySQL)"`
	FailoverSemisyncState                 bool   `key:"failover-semisync-state" default:"false" help:"Fail over only while semi-sync replication is in sync"`
	FailoverAtSync                        bool   `key:"failover-at-sync" default:"false" help:"Fail over only when the candidate was in semi-sync with the master"`
	FailoverFalsePositivePingCounter      int    `key:"failover-falsepositive-ping-counter" default:"5" min:"0" max:"10000" help:"Consecutive failed checks before the master is declared dead"`
	FailoverFalsePositiveHeartbeat        bool   `key:"failover-falsepositive-heartbeat" default:"true" help:"Check that replicas also lost the master's heartbeat before failing over"`
	FailoverFalsePositiveHeartbeatTimeout int    `key:"failover-falsepositive-heartbeat-timeout" default:"3" min:"0" max:"3600" help:"Seconds without heartbeat on replicas to confirm a dead master"`
	FailoverFalsePositiveExternal         bool   `key:"failover-falsepositive-external" default:"false" help:"Confirm a dead master with an external HTTP check"`
	FailoverFalsePositiveExternalPort     int    `key:"failover-falsepositive-external-port" default:"80" min:"1" max:"65535" help:"Port of the external HTTP check"`
	FailoverFalsePositiveMaxscale         bool   `key:"failover-falsepositive-maxscale" default:"false" help:"Confirm a dead master through MaxScale"`
	FailoverPreScript                     string `key:"failover-pre-script" default:"" help:"Script run before a failover"`
	FailoverPostScript                    string `key:"failover-post-script" default:"" help:"Script run after a failover"`
	FailoverEventScheduler                bool   `key:"failover-event-scheduler" default:"false" help:"Move the event scheduler to the new master"`
	FailoverEventStatus                   bool   `key:"failover-event-status" default:"false" help:"Move the enabled/disabled status of events to the new master"`
	FailoverCheckDelayStat                bool   `key:"failover-check-delay-stat" default:"false" help:"Use lag statistics to choose the candidate"`
	FailoverLogFileKeep                   int    `key:"failover-log-file-keep" default:"5" min:"0" max:"10000" help:"Number of failover log files kept"`
	FailoverMdevCheck                     bool   `key:"failover-mdev-check" default:"false" help:"Refuse failover on MariaDB versions with known replication bugs"`

	// Switchover
	SwitchoverWaitKill             int  `key:"switchover-wait-kill" default:"5000" min:"0" max:"3600000" help:"Milliseconds to wait before killing connections on the old master"`
	SwitchoverWaitTrx              int  `key:"switchover-wait-trx" default:"10" min:"0" max:"3600" help:"Seconds to wait for running transactions to finish"`
	SwitchoverWaitWriteQuery       int  `key:"switchover-wait-write-query" default:"10" min:"0" max:"3600" help:"Seconds to wait for running write queries to finish"`
	SwitchoverAtEqualGTID          bool `key:"switchover-at-equal-gtid" default:"false" help:"Switch over only when all replicas have the master's GTID position"`
	SwitchoverAtSync               bool `key:"switchover-at-sync" default:"false" help:"Switch over only while semi-sync replication is in sync"`
	SwitchoverSlaveWaitCatch       bool `key:"switchover-slave-wait-catch" default:"true" help:"Wait for replicas to catch up before switching over"`
	SwitchoverDecreaseMaxConn      bool `key:"switchover-decrease-max-conn" default:"true" help:"Lower max_connections on the old master during switchover"`
	SwitchoverDecreaseMaxConnValue int  `key:"switchover-decrease-max-conn-value" default:"10" min:"1" max:"100000" help:"max_connections set on the old master during switchover"`
	SwitchoverWaitRouteChange      int  `key:"switchover-wait-route-change" default:"2" min:"0" max:"3600" help:"Seconds to wait for proxies to change route"`
	SwitchoverLowerRelease         bool `key:"switchover-lower-release" default:"false" help:"Allow switching over to a server of a lower release"`
	SwitchoverCopyOldLeaderGTID    bool `key:"switchover-copy-old-leader-gtid" default:"false" help:"Copy the old leader's gtid_slave_pos to the new leader"`

	// Rejoin
	Autorejoin                         bool   `key:"autorejoin" default:"true" help:"Rejoin a failed master as a replica when it comes back"`
	Autoseed                           bool   `key:"autoseed" default:"false" help:"Reseed new or broken databases automatically from a backup"`
	AutorejoinBackupBinlog             bool   `key:"autorejoin-backup-binlog" default:"true" help:"Back up the binary logs the old master had not replicated"`
	AutorejoinFlashback                bool   `key:"autorejoin-flashback" default:"false" help:"Rejoin with flashback of unreplicated transactions"`
	AutorejoinFlashbackOnSync          bool   `key:"autorejoin-flashback-on-sync" default:"true" help:"Use flashback when the old master was in semi-sync"`
	AutorejoinMysqldump                bool   `key:"autorejoin-mysqldump" default:"false" help:"Rejoin by a mysqldump from the new master"`
	AutorejoinLogicalBackup            bool   `key:"autorejoin-logical-backup" default:"false" help:"Rejoin by restoring the last logical backup"`
	AutorejoinPhysicalBackup           bool   `key:"autorejoin-physical-backup" default:"false" help:"Rejoin by restoring the last physical backup"`
	AutorejoinZFSFlashback             bool   `key:"autorejoin-zfs-flashback" default:"false" help:"Rejoin by rolling back a ZFS snapshot"`
	AutorejoinForceRestore             bool   `key:"autorejoin-force-restore" default:"false" help:"Restore a backup even when a rejoin looks possible"`
	AutorejoinSlavePositionalHeartbeat bool   `key:"autorejoin-slave-positional-heartbeat" default:"false" help:"Rejoin positional replicas using heartbeat positions"`
	AutorejoinScript                   string `key:"autorejoin-script" default:"" help:"Script run when a server rejoins"`

	// ProxySQL
	ProxySQL                             bool   `key:"proxysql" default:"false" help:"Manage ProxySQL routers"`
	ProxySQLServers                      string `key:"proxysql-servers" default:"" help:"Comma-separated ProxySQL hosts"`
	ProxySQLServersIPv6                  string `key:"proxysql-servers-ipv6" default:"" help:"Comma-separated extra IPv6 binds, k-th for the k-th ProxySQL, with brackets"`
	ProxySQLPort                         int    `key:"proxysql-port" default:"3306" min:"1" max:"65535" help:"ProxySQL client (read-write) port"`
	ProxySQLAdminPort                    int    `key:"proxysql-admin-port" default:"6032" min:"1" max:"65535" help:"ProxySQL admin interface port"`
	ProxySQLAdminBindIPv6                bool   `key:"proxysql-admin-bind-ipv6" default:"false" help:"Put the ProxySQL admin interface on the proxysql-servers-ipv6 address too; off, it listens there only when that is ::1 (on SlapOS the address is public)"`
	ProxySQLUser                         string `key:"proxysql-user" default:"admin" help:"ProxySQL admin user"`
	ProxySQLPassword                     string `key:"proxysql-password" default:"admin" help:"ProxySQL admin password"`
	ProxySQLWriterHostgroup              int    `key:"proxysql-writer-hostgroup" default:"0" min:"0" max:"2147483647" help:"ProxySQL writer hostgroup"`
	ProxySQLReaderHostgroup              int    `key:"proxysql-reader-hostgroup" default:"1" min:"0" max:"2147483647" help:"ProxySQL reader hostgroup"`
	ProxySQLBootstrap                    bool   `key:"proxysql-bootstrap" default:"false" help:"Bootstrap ProxySQL servers, users and hostgroups"`
	ProxySQLBootstrapUsers               bool   `key:"proxysql-bootstrap-users" default:"true" help:"Copy database users into ProxySQL"`
	ProxySQLBootstrapHostgroups          bool   `key:"proxysql-bootstrap-hostgroups" default:"false" help:"Create ProxySQL replication hostgroups"`
	ProxySQLBootstrapVariables           bool   `key:"proxysql-bootstrap-variables" default:"false" help:"Set ProxySQL monitor variables"`
	ProxySQLBootstrapQueryRules          bool   `key:"proxysql-bootstrap-query-rules" default:"false" help:"Create ProxySQL query rules"`
	ProxySQLSaveToDisk                   bool   `key:"proxysql-save-to-disk" default:"false" help:"SAVE ... TO DISK after each ProxySQL change"`
	ProxySQLMultiplexing                 bool   `key:"proxysql-multiplexing" default:"false" help:"Enable ProxySQL multiplexing"`
	ProxySQLJanitorWeights               int    `key:"proxysql-janitor-weights" default:"100" min:"0" max:"10000000" help:"Weight given to backends by the ProxySQL janitor"`
	ProxyServersReadOnMaster             bool   `key:"proxy-servers-read-on-master" default:"false" help:"Route reads to the master too"`
	ProxyServersReadOnMasterNoSlave      bool   `key:"proxy-servers-read-on-master-no-slave" default:"true" help:"Route reads to the master when no replica is available"`
	ProxyServersBackendMaxReplicationLag int    `key:"proxy-servers-backend-max-replication-lag" default:"30" min:"0" max:"86400" help:"Replica lag in seconds above which proxies stop reading from it"`
	ProxyServersBackendMaxConnections    int    `key:"proxy-servers-backend-max-connections" default:"1000" min:"0" max:"1000000" help:"Maximum connections per backend in proxies"`

	// HAProxy
	HAProxy            bool   `key:"haproxy" default:"false" help:"Manage HAProxy routers"`
	HAProxyServers     string `key:"haproxy-servers" default:"127.0.0.1" help:"Comma-separated HAProxy hosts"`
	HAProxyServersIPv6 string `key:"haproxy-servers-ipv6" default:"" help:"Comma-separated extra IPv6 binds, k-th for the k-th HAProxy, with brackets"`
	HAProxyMode        string `key:"haproxy-mode" default:"runtimeapi" help:"How HAProxy is driven: runtimeapi or standby"`
	HAProxyWritePort   int    `key:"haproxy-write-port" default:"3306" min:"1" max:"65535" help:"HAProxy read-write port (to the master)"`
	HAProxyReadPort    int    `key:"haproxy-read-port" default:"3307" min:"1" max:"65535" help:"HAProxy read-only port (to all nodes)"`
	HAProxyStatPort    int    `key:"haproxy-stat-port" default:"1988" min:"0" max:"65535" help:"HAProxy statistics port (0 = none)"`
	HAProxyAPIPort     int    `key:"haproxy-api-port" default:"1999" min:"0" max:"65535" help:"HAProxy runtime API port (0 = none)"`
	HAProxyBinaryPath  string `key:"haproxy-binary-path" default:"/usr/sbin/haproxy" help:"HAProxy binary"`
	HAProxyIPWriteBind string `key:"haproxy-ip-write-bind" default:"0.0.0.0" help:"HAProxy bind address of the write port"`
	HAProxyIPReadBind  string `key:"haproxy-ip-read-bind" default:"0.0.0.0" help:"HAProxy bind address of the read port"`

	// MaxScale
	MaxScale              bool   `key:"maxscale" default:"false" help:"Manage MaxScale routers"`
	MaxScaleServers       string `key:"maxscale-servers" default:"" help:"Comma-separated MaxScale hosts"`
	MaxScalePort          int    `key:"maxscale-port" default:"4003" min:"1" max:"65535" help:"MaxScale admin port"`
	MaxScaleUser          string `key:"maxscale-user" default:"admin" help:"MaxScale admin user"`
	MaxScalePass          string `key:"maxscale-pass" default:"mariadb" help:"MaxScale admin password"`
	MaxScaleWritePort     int    `key:"maxscale-write-port" default:"3306" min:"1" max:"65535" help:"MaxScale read-write listener port"`
	MaxScaleReadPort      int    `key:"maxscale-read-port" default:"3307" min:"1" max:"65535" help:"MaxScale read-only listener port"`
	MaxScaleReadWritePort int    `key:"maxscale-read-write-port" default:"3308" min:"1" max:"65535" help:"MaxScale read-write-split listener port"`

	// Provisioning
	ProvOrchestrator         string  `key:"prov-orchestrator" default:"onpremise" help:"Orchestrator: local, slapos, onpremise, opensvc or kube"`
	ProvDBTags               string  `key:"prov-db-tags" default:"semisync,row,innodb,noquerycache,threadpool,slow,pfs,docker,linux,readonly,diskmonitor,sqlerror,compressbinlog" help:"Comma-separated tags selecting the generated MariaDB configuration"`
	ProvProxyTags            string  `key:"prov-proxy-tags" default:"masterslave,docker,linux,noreadwritesplit" help:"Comma-separated tags selecting the generated proxy configuration"`
	ProvDBMemory             int     `key:"prov-db-memory" default:"256" min:"1" max:"16777216" help:"Database memory in MB used for sizing"`
	ProvDBMemorySharedPct    string  `key:"prov-db-memory-shared-pct" default:"threads:16,innodb:60,myisam:10,aria:10,rocksdb:1,tokudb:1,s3:1,archive:1,querycache:0" help:"Share of prov-db-memory per global buffer, name:percent"`
	ProvDBMemoryThreadedPct  string  `key:"prov-db-memory-threaded-pct" default:"tmp:70,join:20,sort:10" help:"Share of per-thread memory per buffer, name:percent"`
	ProvDBCPUCores           int     `key:"prov-db-cpu-cores" default:"1" min:"1" max:"4096" help:"Database CPU cores used for sizing"`
	ProvDBDiskIOPS           int     `key:"prov-db-disk-iops" default:"300" min:"1" max:"100000000" help:"Database disk IOPS used for sizing"`
	ProvDBDiskIOPSLatency    float64 `key:"prov-db-disk-iops-latency" default:"0.002" min:"0" max:"60" help:"Database disk latency in seconds used for sizing"`
	ProvDBDiskSize           int     `key:"prov-db-disk-size" default:"20" min:"1" max:"1048576" help:"Database disk size in GB"`
	ProvDBMaxConnections     int     `key:"prov-db-max-connections" default:"1000" min:"1" max:"100000" help:"Generated max_connections"`
	ProvDBExpireLogDays      int     `key:"prov-db-expire-log-days" default:"5" min:"0" max:"99" help:"Generated expire_logs_days"`
	ProvDBDomain             int     `key:"prov-db-domain" default:"0" min:"0" max:"2147483647" help:"Generated gtid_domain_id"`
	ProvDBApplyDynamicConfig bool    `key:"prov-db-apply-dynamic-config" default:"false" help:"Apply generated dynamic variables to running servers"`
	ProvProxyCPUCores        int     `key:"prov-proxy-cpu-cores" default:"1" min:"1" max:"4096" help:"Proxy CPU cores used for sizing"`
	ProvProxyMemory          int     `key:"prov-proxy-memory" default:"1" min:"1" max:"16384" help:"Proxy memory in GB used for sizing"`
	ProvDBAgents             string  `key:"prov-db-agents" default:"" help:"Comma-separated agents (nodes) allowed to host databases"`
	ProvProxyAgents          string  `key:"prov-proxy-agents" default:"" help:"Comma-separated agents (nodes) allowed to host proxies"`
	ProvDBBinaryBasedir      string  `key:"prov-db-binary-basedir" default:"/usr/local/mysql/bin" help:"Directory of the mariadbd binary"`
	ProvDBClientBasedir      string  `key:"prov-db-client-basedir" default:"/usr/bin" help:"Directory of the mariadb client binaries"`
	ProvSerialized           bool    `key:"prov-serialized" default:"false" help:"Provision services one after the other"`
	ProvDBBootstrapScript    string  `key:"prov-db-bootstrap-script" default:"" help:"Script run after a database is provisioned"`
	ProvDBCleanupScript      string  `key:"prov-db-cleanup-script" default:"" help:"Script run after a database is unprovisioned"`
	ProvDBStartScript        string  `key:"prov-db-start-script" default:"" help:"Script run to start a database"`
	ProvDBStopScript         string  `key:"prov-db-stop-script" default:"" help:"Script run to stop a database"`
	ProvProxyBootstrapScript string  `key:"prov-proxy-bootstrap-script" default:"" help:"Script run after a proxy is provisioned"`
	ProvProxyCleanupScript   string  `key:"prov-proxy-cleanup-script" default:"" help:"Script run after a proxy is unprovisioned"`
	ProvProxyStartScript     string  `key:"prov-proxy-start-script" default:"" help:"Script run to start a proxy"`
	ProvProxyStopScript      string  `key:"prov-proxy-stop-script" default:"" help:"Script run to stop a proxy"`
	OnpremiseSSH             bool    `key:"onpremise-ssh" default:"false" help:"Run on-premise jobs over SSH"`
	OnpremiseSSHPort         int     `key:"onpremise-ssh-port" default:"22" min:"1" max:"65535" help:"SSH port of on-premise hosts"`
	OnpremiseSSHCredential   string  `key:"onpremise-ssh-credential" default:"root:" help:"SSH credential user:password of on-premise hosts"`

	// SlapOS
	SlapOSDBPartitions         string `key:"slapos-db-partitions" default:"" help:"Comma-separated partition paths, k-th for the k-th db-servers-hosts entry"`
	SlapOSProxySQLPartitions   string `key:"slapos-proxysql-partitions" default:"" help:"Comma-separated partition paths, k-th for the k-th ProxySQL"`
	SlapOSHAProxyPartitions    string `key:"slapos-haproxy-partitions" default:"" help:"Comma-separated partition paths, k-th for the k-th HAProxy"`
	SlapOSMaxScalePartitions   string `key:"slapos-maxscale-partitions" default:"" help:"Comma-separated partition paths, k-th for the k-th MaxScale"`
	SlapOSShardProxyPartitions string `key:"slapos-shardproxy-partitions" default:"" help:"Comma-separated partition paths of shard proxies"`
	SlapOSSphinxPartitions     string `key:"slapos-sphinx-partitions" default:"" help:"Comma-separated partition paths of Sphinx servers"`

	// Managers in high availability (etcd)
	EtcdEndpoints     string `key:"etcd-endpoints" default:"" help:"Comma-separated etcd client URLs (http:// or https://); empty: this manager works alone"`
	EtcdPrefix        string `key:"etcd-prefix" default:"/replication-manager-pro" help:"Key prefix of the managers' state in etcd"`
	EtcdLeaseTTL      int    `key:"etcd-lease-ttl" default:"5" min:"2" max:"300" help:"Seconds a manager's leadership outlives its last contact with etcd"`
	EtcdManagerName   string `key:"etcd-manager-name" default:"" help:"This manager's name among the managers; empty: host name and API port"`
	EtcdUsername      string `key:"etcd-username" default:"" help:"etcd user"`
	EtcdPassword      string `key:"etcd-password" default:"" secret:"true" help:"etcd password"`
	EtcdTLSCACert     string `key:"etcd-tls-ca-cert" default:"" help:"TLS authority certificate to verify etcd"`
	EtcdTLSClientCert string `key:"etcd-tls-client-cert" default:"" help:"TLS client certificate for etcd"`
	EtcdTLSClientKey  string `key:"etcd-tls-client-key" default:"" help:"TLS client key for etcd"`

	// API and HTTP
	APIPort                     int    `key:"api-port" default:"10005" min:"0" max:"65535" help:"REST API port (0 = any free port)"`
	APIBind                     string `key:"api-bind" default:"0.0.0.0" help:"REST API bind address"`
	APICredentials              string `key:"api-credentials" default:"admin:repman" help:"Comma-separated API users user:password"`
	APICredentialsExternal      string `key:"api-credentials-external" default:"" secret:"true" help:"Comma-separated extra API users user:password"`
	APICredentialsACLAllow      string `key:"api-credentials-acl-allow" default:"admin:global cluster proxy db prov,dba:cluster proxy db,foo:" help:"Grant prefixes per API user, user:grant grant,..."`
	APICredentialsACLDiscard    string `key:"api-credentials-acl-discard" default:"" help:"Grant prefixes removed per API user, user:grant grant,..."`
	APICredentialsSecureConfig  bool   `key:"api-credentials-secure-config" default:"false" help:"Hide secrets in settings returned by the API"`
	APIHTTPSBind                bool   `key:"api-https-bind" default:"false" help:"Serve the web UI through the HTTPS API listener"`
	APITokenTimeout             int    `key:"api-token-timeout" default:"48" min:"0" max:"8760" help:"API token lifetime in hours (0 = 48)"`
	APIPublicURL                string `key:"api-public-url" default:"https://127.0.0.1:10005" help:"Public URL of the API"`
	HTTPServer                  bool   `key:"http-server" default:"true" help:"Start the plain HTTP web server"`
	HTTPBindAddress             string `key:"http-bind-address" default:"localhost" help:"HTTP web server bind address"`
	HTTPPort                    int    `key:"http-port" default:"10001" min:"0" max:"65535" help:"HTTP web server port (0 = any free port)"`
	HTTPRoot                    string `key:"http-root" default:"/usr/share/replication-manager/dashboard" help:"Directory of the web UI files"`
	HTTPRefreshInterval         int    `key:"http-refresh-interval" default:"4000" min:"100" max:"3600000" help:"Web UI refresh interval in milliseconds"`
	HTTPSessionLifetime         int    `key:"http-session-lifetime" default:"3600" min:"0" max:"2592000" help:"Web session lifetime in seconds"`
	APICORSAllowOrigins         string `key:"api-cors-allow-origins" default:"" help:"Comma-separated origins allowed to call the API from a browser (CORS); empty sends no CORS header"`
	APIMaxConnections           int    `key:"api-max-connections" default:"512" min:"1" max:"1000000" help:"Maximum open connections per listener (API and HTTP); beyond it the connection idle the longest is closed (keep well under half the process's file limit)"`
	SlapOSLegacyAnonymousRoutes bool   `key:"slapos-legacy-anonymous-routes" default:"false" help:"Serve partition routes (need-*, config bundles) without a partition credential, for SlapOS's unchanged cron scripts; bundles then carry no admin credential"`
	TestInjectTraffic           bool   `key:"test-inject-traffic" default:"false" help:"Write the heartbeat as monitoring-write-heartbeat does (toggled by the database-heartbeat switch)"`

	// Backups
	Backup                 bool   `key:"backup" default:"false" help:"Enable backups"`
	BackupPhysicalType     string `key:"backup-physical-type" default:"xtrabackup" help:"Physical backup tool (mariabackup is used for MariaDB >= 10.1)"`
	BackupLogicalType      string `key:"backup-logical-type" default:"mysqldump" help:"Logical backup tool"`
	BackupMysqldumpPath    string `key:"backup-mysqldump-path" default:"" help:"mysqldump binary"`
	BackupMysqlclientPath  string `key:"backup-mysqlclient-path" default:"" help:"mysql client binary"`
	BackupMysqlbinlogPath  string `key:"backup-mysqlbinlog-path" default:"" help:"mysqlbinlog binary"`
	BackupRestic           bool   `key:"backup-restic" default:"false" help:"Archive backups with restic"`
	BackupResticBinaryPath string `key:"backup-restic-binary-path" default:"/usr/bin/restic" help:"restic binary"`
	BackupResticAWS        bool   `key:"backup-restic-aws" default:"false" help:"Use an S3 (AWS) restic repository"`
	BackupResticPassword   string `key:"backup-restic-password" default:"" secret:"true" help:"restic repository password"`
	BackupResticRepository string `key:"backup-restic-repository" default:"s3:https://s3.signal18.io/backups" help:"restic repository (a path, or a restic URL such as s3:...)"`
	BackupKeepHourly       int    `key:"backup-keep-hourly" default:"1" min:"0" max:"100000" help:"Hourly backups kept (local store and restic)"`
	BackupKeepDaily        int    `key:"backup-keep-daily" default:"1" min:"0" max:"100000" help:"Daily backups kept (local store and restic)"`
	BackupKeepWeekly       int    `key:"backup-keep-weekly" default:"4" min:"0" max:"100000" help:"Weekly backups kept (local store and restic)"`
	BackupKeepMonthly      int    `key:"backup-keep-monthly" default:"12" min:"0" max:"100000" help:"Monthly backups kept (local store and restic)"`
	BackupKeepYearly       int    `key:"backup-keep-yearly" default:"2" min:"0" max:"100000" help:"Yearly backups kept (local store and restic)"`
	BackupBinlogs          bool   `key:"backup-binlogs" default:"false" help:"Back up binary logs"`
	CompressBackups        bool   `key:"compress-backups" default:"false" help:"Compress backups"`

	// Scheduler
	SchedulerDBServersReceiverPorts       string `key:"scheduler-db-servers-receiver-ports" default:"4444" help:"Comma-separated ports receiving backup streams"`
	SchedulerDBServersSenderPorts         string `key:"scheduler-db-servers-sender-ports" default:"" help:"Comma-separated ports sending backup streams"`
	SchedulerDBServersLogicalBackup       bool   `key:"scheduler-db-servers-logical-backup" default:"true" help:"Schedule logical backups"`
	SchedulerDBServersLogicalBackupCron   string `key:"scheduler-db-servers-logical-backup-cron" default:"0 0 1 * * 6" help:"Logical backup schedule (6-field cron with seconds)"`
	SchedulerDBServersPhysicalBackup      bool   `key:"scheduler-db-servers-physical-backup" default:"false" help:"Schedule physical backups"`
	SchedulerDBServersPhysicalBackupCron  string `key:"scheduler-db-servers-physical-backup-cron" default:"0 0 0 * * 0-4" help:"Physical backup schedule (6-field cron with seconds)"`
	SchedulerDBServersLogs                bool   `key:"scheduler-db-servers-logs" default:"false" help:"Schedule database log collection"`
	SchedulerDBServersLogsCron            string `key:"scheduler-db-servers-logs-cron" default:"0 0/10 * * * *" help:"Log collection schedule (6-field cron with seconds)"`
	SchedulerDBServersOptimize            bool   `key:"scheduler-db-servers-optimize" default:"false" help:"Schedule table optimization"`
	SchedulerDBServersOptimizeCron        string `key:"scheduler-db-servers-optimize-cron" default:"0 0 3 1 * 5" help:"Optimization schedule (6-field cron with seconds)"`
	SchedulerDBServersLogsTableRotate     bool   `key:"scheduler-db-servers-logs-table-rotate" default:"true" help:"Schedule rotation of log tables"`
	SchedulerDBServersLogsTableRotateCron string `key:"scheduler-db-servers-logs-table-rotate-cron" default:"0 0 0/6 * * *" help:"Log table rotation schedule (6-field cron with seconds)"`
	SchedulerDBServersLogsTableKeep       int    `key:"scheduler-db-servers-logs-table-keep" default:"12" min:"0" max:"10000" help:"Number of rotated log tables kept"`
	SchedulerRollingRestart               bool   `key:"scheduler-rolling-restart" default:"false" help:"Schedule rolling restarts"`
	SchedulerJobsSSH                      bool   `key:"scheduler-jobs-ssh" default:"false" help:"Run scheduled database jobs over SSH"`

	// Benchmarks
	SysbenchBinaryPath string `key:"sysbench-binary-path" default:"/usr/bin/sysbench" help:"sysbench binary"`
	SysbenchThreads    int    `key:"sysbench-threads" default:"4" min:"1" max:"4096" help:"Number of sysbench threads"`
	SysbenchTime       int    `key:"sysbench-time" default:"100" min:"0" max:"86400" help:"Duration of a sysbench run in seconds"`
	SysbenchV1         bool   `key:"sysbench-v1" default:"false" help:"sysbench is version 1.x (new option syntax)"`

	// Mail and alerts
	MailFrom              string `key:"mail-from" default:"mrm@localhost" help:"Alert mail sender"`
	MailTo                string `key:"mail-to" default:"" help:"Comma-separated alert mail recipients"`
	MailSMTPAddr          string `key:"mail-smtp-addr" default:"localhost:25" help:"SMTP server host:port"`
	MailSMTPUser          string `key:"mail-smtp-user" default:"" help:"SMTP user"`
	MailSMTPPassword      string `key:"mail-smtp-password" default:"" secret:"true" help:"SMTP password"`
	MailSMTPTLSSkipVerify bool   `key:"mail-smtp-tls-skip-verify" default:"false" help:"Do not verify the SMTP server certificate"`
	AlertScript           string `key:"alert-script" default:"" help:"Script called on alerts"`
	AlertSlackURL         string `key:"alert-slack-url" default:"" help:"Slack webhook URL for alerts"`
}

// aliases maps old or alternative key names (lower case) to canonical keys, as
// replication-manager accepted them (its initAlias and deprecated flags).
var aliases = map[string]string{
	"monitoring-config-rewrite":     "monitoring-save-config",
	"api-user":                      "api-credentials",
	"api-credential":                "api-credentials",
	"replication-master-connection": "replication-source-name",
	"master-connection":             "replication-source-name",
	"logfile":                       "log-file",
	"wait-kill":                     "switchover-wait-kill",
	"user":                          "db-servers-credential",
	"hosts":                         "db-servers-hosts",
	"hosts-tls-ca-cert":             "db-servers-tls-ca-cert",
	"hosts-tls-client-key":          "db-servers-tls-client-key",
	"hosts-tls-client-cert":         "db-servers-tls-client-cert",
	"connect-timeout":               "db-servers-connect-timeout",
	"rpluser":                       "replication-credential",
	"prefmaster":                    "db-servers-prefered-master",
	"ignore-servers":                "db-servers-ignored-hosts",
	"readonly":                      "failover-readonly-state",
	"maxscale-host":                 "maxscale-servers",
	"maxscale-password":             "maxscale-pass",
	"multimaster":                   "replication-multi-master",
	"multi-tier-slave":              "replication-multi-tier-slave",
	"pre-failover-script":           "failover-pre-script",
	"post-failover-script":          "failover-post-script",
	"rejoin-script":                 "autorejoin-script",
	"share-directory":               "monitoring-sharedir",
	"working-directory":             "monitoring-datadir",
	"interactive":                   "failover-mode",
	"failcount":                     "failover-falsepositive-ping-counter",
	"wait-write-query":              "switchover-wait-write-query",
	"wait-trx":                      "switchover-wait-trx",
	"gtidcheck":                     "switchover-at-equal-gtid",
	"maxdelay":                      "failover-max-slave-delay",
	"backup-binlogs-method":         "binlog-copy-mode",
	"backup-binlogs-script":         "binlog-copy-script",
	// deprecated flags
	"db-servers-binary-path": "prov-db-binary-basedir",
	"mysqlbinlog-path":       "backup-mysqlbinlog-path",
	"mysqlclient-path":       "backup-mysqlclient-path",
	"mysqldump-path":         "backup-mysqldump-path",
	"proxysql-copy-grants":   "proxysql-bootstrap-users",
}
