package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"replication-manager-pro/config"
)

// MonitorConfigFrom extracts a monitor's settings from a cluster's configuration. The config
// package has validated the values; errors here name the key all the same.
func MonitorConfigFrom(c *config.Cluster) (MonitorConfig, error) {
	s := &c.Settings
	mc := MonitorConfig{
		Cluster:          c.Name,
		Ticker:           s.MonitoringTickerDuration(),
		ProbeTimeout:     time.Duration(s.DBServersConnectTimeout) * time.Second,
		MaxFail:          s.FailoverFalsePositivePingCounter,
		MaxLag:           int64(s.FailoverMaxSlaveDelay),
		CheckLag:         s.CheckReplicationState,
		ReadOnlyReplicas: s.FailoverReadonlyState,
		HeartbeatCheck:   s.FailoverFalsePositiveHeartbeat,
		AutoRejoin:       s.Autorejoin,
		FlattenTree:      s.ReplicationTreeFlatten,
		RelayKeepDepth:   s.ReplicationRelayKeepDepth,
		HeartbeatTimeout: time.Duration(s.FailoverFalsePositiveHeartbeatTimeout) * time.Second,
	}
	period, silence, enforce := heartbeat(s, mc.Ticker, mc.HeartbeatTimeout)
	mc.HeartbeatTimeout = silence
	if enforce {
		mc.HeartbeatPeriod = period
	}
	var err error
	if mc.Hosts, err = s.Hosts(); err != nil {
		return mc, fmt.Errorf("cluster %s: db-servers-hosts: %w", c.Name, err)
	}
	if mc.Preferred, err = s.PreferedMasters(); err != nil {
		return mc, fmt.Errorf("cluster %s: db-servers-prefered-master: %w", c.Name, err)
	}
	if mc.Ignored, err = s.IgnoredHosts(); err != nil {
		return mc, fmt.Errorf("cluster %s: db-servers-ignored-hosts: %w", c.Name, err)
	}
	if mc.IgnoredReadOnly, err = s.HostList("db-servers-ignored-readonly"); err != nil {
		return mc, fmt.Errorf("cluster %s: db-servers-ignored-readonly: %w", c.Name, err)
	}
	if s.AutorejoinBackupBinlog {
		dbc, err := s.DBCredential()
		if err != nil {
			return mc, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
		}
		mc.SaveDiverged = &SaveConfig{Binary: s.BackupMysqlbinlogPath, User: dbc.User, Password: dbc.Password,
			Dir: filepath.Join(s.MonitoringDatadir, c.Name, "diverged")}
	}
	repl, err := s.ReplicationCredentials()
	if err != nil {
		return mc, fmt.Errorf("cluster %s: replication-credential: %w", c.Name, err)
	}
	sec := time.Second
	mc.Failover = FailoverConfig{
		Mode:        s.FailoverMode,
		Limit:       s.FailoverLimit,
		TimeLimit:   time.Duration(s.FailoverTimeLimit) * sec,
		PreScript:   s.FailoverPreScript,
		PostScript:  s.FailoverPostScript,
		AtEqualGTID: s.SwitchoverAtEqualGTID,
		AtSync:      s.FailoverAtSync,
		Exec: ExecConfig{
			Cluster:          c.Name,
			ReplUser:         repl.User,
			ReplPassword:     repl.Password,
			ReplSSL:          s.ReplicationUseSSL,
			HeartbeatPeriod:  period,
			ConnectRetry:     time.Duration(s.ForceSlaveHeartbeatRetry) * sec,
			ReadOnlyReplicas: s.FailoverReadonlyState,
			IgnoredReadOnly:  set(mc.IgnoredReadOnly),
			Channel:          s.ReplicationSourceName,
			WaitKill:         time.Duration(s.SwitchoverWaitKill) * time.Millisecond,
			WaitTrx:          time.Duration(s.SwitchoverWaitTrx) * sec,
			WaitWriteQuery:   time.Duration(s.SwitchoverWaitWriteQuery) * sec,
			SlaveWaitCatch:   s.SwitchoverSlaveWaitCatch,
			StateDir:         s.MonitoringDatadir,
			KeepLogs:         s.FailoverLogFileKeep,
		},
	}
	if k := os.Getenv(CrashAfterStepEnv); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 {
			return mc, fmt.Errorf("environment %s=%q: want a step count", CrashAfterStepEnv, k)
		}
		mc.Failover.Exec.CrashAfterStep = n
	}
	return mc, nil
}

// CrashAfterStepEnv names the environment variable of the crash tests: the manager kills
// itself once that many steps of a plan are journaled done. Never set it in production.
const CrashAfterStepEnv = "RMP_TEST_CRASH_AFTER_STEP"

// heartbeat derives, from the monitor's own settings, the heartbeat period replicas must
// have and the silence after which they agree their source is dead. A replica notices a
// frozen or cut-off source (whose TCP connection stays up) only by missing heartbeats, and
// MariaDB's default period is slave_net_timeout / 2 = 30 s: a minute before anyone could
// tell. With force-slave-heartbeat the period is the monitoring ticker (at least 50 ms, at
// most force-slave-heartbeat-time), so each tick sees a heartbeat, and three missed ones
// (never less than two ticks, never more than failover-falsepositive-heartbeat-timeout)
// are silence. Without it replicas keep their own period and the timeout is the key's.
func heartbeat(s *config.Settings, ticker, timeout time.Duration) (period, silence time.Duration, enforce bool) {
	if !s.ForceSlaveHeartbeat {
		return time.Duration(s.ForceSlaveHeartbeatTime) * time.Second, timeout, false
	}
	ceiling := time.Duration(s.ForceSlaveHeartbeatTime) * time.Second
	if ceiling <= 0 {
		ceiling = 3 * time.Second
	}
	period = min(max(ticker, 50*time.Millisecond), ceiling)
	silence = max(3*period, 2*ticker)
	if timeout > 0 && silence > timeout {
		silence = timeout
	}
	return period, silence, true
}
