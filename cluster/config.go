package cluster

import (
	"fmt"
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
		HeartbeatTimeout: time.Duration(s.FailoverFalsePositiveHeartbeatTimeout) * time.Second,
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
	return mc, nil
}
