package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// This file holds what the REST API (package api) needs of the fleet and its monitors
// beyond the monitoring loop itself.

// Busy reports a failover or switchover in progress (enforcement is paused meanwhile): the
// API's is-master answers "not a valid master" then.
func (m *Monitor) Busy() bool { return m.paused.Load() }

// Config returns the monitor's configuration (a copy; the routers are shared).
func (m *Monitor) Config() MonitorConfig { return m.cfg }

// InMaintenance reports whether an operator put a server in maintenance.
func (m *Monitor) InMaintenance(addr ipv6.HostPort) bool {
	v, ok := m.maintenance.Load(addr)
	return ok && v.(bool)
}

// maintained returns the servers an operator put in maintenance.
func (m *Monitor) maintained() []ipv6.HostPort {
	var out []ipv6.HostPort
	m.maintenance.Range(func(k, v any) bool {
		if v.(bool) {
			out = append(out, k.(ipv6.HostPort))
		}
		return true
	})
	return out
}

// ReloadWith rebuilds a running cluster's monitor from its current settings changed by
// edit (an API settings switch, set-prefered, ...). Operator maintenance flags are carried
// over to the new monitor. edit returning an error leaves the cluster untouched.
func (f *Fleet) ReloadWith(name string, edit func(*config.Settings) error) error {
	mem, ok := f.Get(name)
	if !ok {
		return fmt.Errorf("cluster %s: not running", name)
	}
	c := mem.Config
	if err := edit(&c.Settings); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	return f.ReloadKeepingMaintenance(c)
}

// ReloadKeepingMaintenance is Reload that carries the operator maintenance flags of the
// previous monitor over to the new one (the settings reload does not change them).
func (f *Fleet) ReloadKeepingMaintenance(c config.Cluster) error {
	var maint []ipv6.HostPort
	if old, ok := f.Get(c.Name); ok {
		maint = old.Monitor.maintained()
	}
	if err := f.Reload(c); err != nil {
		return err
	}
	if mem, ok := f.Get(c.Name); ok {
		for _, a := range maint {
			mem.Monitor.maintenance.Store(a, true)
		}
	}
	return nil
}

// OpenServer opens a short-lived SQL handle to one configured server of a cluster with its
// administration credential (db-servers-credential), for API actions such as the
// replication bootstrap. The caller closes it.
func OpenServer(c *config.Cluster, addr ipv6.HostPort) (*mariadb.Server, error) {
	cred, err := c.Settings.DBCredential()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: db-servers-credential: %w", c.Name, err)
	}
	return mariadb.Open(addr, cred.User, cred.Password, mariadb.Options{
		ConnectTimeout: time.Duration(max(c.Settings.DBServersConnectTimeout, 1)) * time.Second,
	})
}

// Crashes returns the failovers and switchovers this manager recorded for the cluster
// (failover-log-file-keep of each kind), newest first; none without a state directory.
func (m *Monitor) Crashes() ([]CrashRecord, error) {
	out := []CrashRecord{}
	cfg := m.cfg.Failover.Exec
	if cfg.StateDir == "" {
		return out, nil
	}
	dir := filepath.Join(cfg.StateDir, m.cfg.Cluster)
	for _, kind := range []PlanKind{PlanFailover, PlanSwitchover} {
		files, err := filepath.Glob(filepath.Join(dir, string(kind)+".*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // rotated away meanwhile
			}
			var r CrashRecord
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("crash record %s: %w", f, err)
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}
