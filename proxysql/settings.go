package proxysql

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
)

// Tags returns prov-proxy-tags, with readonmaster added when proxy-servers-read-on-master
// is set (and removed when it is not), as replication-manager does at start.
func Tags(s *config.Settings) []string {
	var out []string
	for _, t := range strings.Split(s.ProvProxyTags, ",") {
		t = strings.TrimSpace(t)
		if t == "" || strings.EqualFold(t, TagReadOnMaster) {
			continue
		}
		out = append(out, t)
	}
	if s.ProxyServersReadOnMaster {
		out = append(out, TagReadOnMaster)
	}
	return out
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// backendSSL reports TLS towards the databases: proxy tag ssl or database tag ssl.
func backendSSL(s *config.Settings) bool {
	return hasTag(Tags(s), TagSSL) || hasTag(strings.Split(s.ProvDBTags, ","), TagSSL)
}

// OptionsFromSettings returns the options of the Routers of a cluster, one per
// proxysql-servers entry (admin port proxysql-admin-port unless the entry names one).
// accounts feeds the user sync; log may be nil.
func OptionsFromSettings(cluster string, s *config.Settings, accounts AccountSource, log *logrus.Entry) ([]Options, error) {
	hosts, err := s.ProxySQLHosts()
	if err != nil {
		return nil, fmt.Errorf("proxysql-servers: %w", err)
	}
	timeout := time.Duration(s.DBServersConnectTimeout) * time.Second
	var out []Options
	for _, h := range hosts {
		out = append(out, Options{
			Cluster: cluster,
			Admin:   AdminConfig{Addr: h, User: s.ProxySQLUser, Password: s.ProxySQLPassword, ConnectTimeout: timeout},
			Hostgroups: Hostgroups{
				Writer: s.ProxySQLWriterHostgroup, Reader: s.ProxySQLReaderHostgroup, Offline: DefaultOfflineHostgroup,
			},
			Rows: RowDefaults{
				Weight: s.ProxySQLJanitorWeights, MaxConnections: s.ProxyServersBackendMaxConnections,
				MaxReplicationLag: s.ProxyServersBackendMaxReplicationLag, UseSSL: backendSSL(s), Comment: cluster,
			},
			Read:                ReadPolicy{OnMaster: s.ProxyServersReadOnMaster, OnMasterNoSlave: s.ProxyServersReadOnMasterNoSlave},
			Manage:              s.ProxySQLBootstrap,
			BootstrapHostgroups: s.ProxySQLBootstrapHostgroups,
			SyncUsers:           s.ProxySQLBootstrapUsers,
			Accounts:            accounts,
			SaveToDisk:          s.ProxySQLSaveToDisk,
			Log:                 log,
		})
	}
	return out, nil
}

// ConfigParamsFromSettings returns the proxysql.cnf parameters of the k-th ProxySQL of a
// cluster. On SlapOS (prov-orchestrator slapos) it binds the k-th proxysql-servers host
// (the partition's IPv4) and the k-th proxysql-servers-ipv6, and its datadir is the k-th
// slapos-proxysql-partitions path; elsewhere it binds 0.0.0.0 (plus the IPv6 when given)
// and uses /var/lib/proxysql.
func ConfigParamsFromSettings(s *config.Settings, k int) (ConfigParams, error) {
	hosts, err := s.ProxySQLHosts()
	if err != nil {
		return ConfigParams{}, fmt.Errorf("proxysql-servers: %w", err)
	}
	if k < 0 || k >= len(hosts) {
		return ConfigParams{}, fmt.Errorf("proxysql-servers: no entry %d (%d given)", k, len(hosts))
	}
	dbs, err := s.Hosts()
	if err != nil {
		return ConfigParams{}, fmt.Errorf("db-servers-hosts: %w", err)
	}
	cred, err := s.DBCredential()
	if err != nil {
		return ConfigParams{}, fmt.Errorf("db-servers-credential: %w", err)
	}
	tags := Tags(s)
	if backendSSL(s) && !hasTag(tags, TagSSL) {
		tags = append(tags, TagSSL)
	}
	p := ConfigParams{
		Datadir: "/var/lib/proxysql", SSLDir: "/etc/proxysql/ssl",
		AdminUser: s.ProxySQLUser, AdminPassword: s.ProxySQLPassword, AdminPort: s.ProxySQLAdminPort, Port: s.ProxySQLPort,
		BindIPv4:    "0.0.0.0",
		MonitorUser: cred.User, MonitorPassword: cred.Password,
		Users:             []User{{Username: cred.User, Password: cred.Password, DefaultHostgroup: s.ProxySQLWriterHostgroup}},
		Hostgroups:        Hostgroups{Writer: s.ProxySQLWriterHostgroup, Reader: s.ProxySQLReaderHostgroup, Offline: DefaultOfflineHostgroup},
		Servers:           dbs,
		MaxConnections:    s.ProxyServersBackendMaxConnections,
		MaxReplicationLag: s.ProxyServersBackendMaxReplicationLag,
		Weight:            s.ProxySQLJanitorWeights,
		Multiplexing:      s.ProxySQLMultiplexing,
		Tags:              tags,
	}
	if v6 := splitList(s.ProxySQLServersIPv6); k < len(v6) {
		p.BindIPv6 = v6[k]
	}
	p.AdminBindIPv6 = s.ProxySQLAdminBindIPv6
	if s.ProvOrchestrator == "slapos" {
		parts := splitList(s.SlapOSProxySQLPartitions)
		if k >= len(parts) {
			return ConfigParams{}, fmt.Errorf("slapos-proxysql-partitions: no entry %d for proxysql-servers %s", k, hosts[k])
		}
		p.Datadir = parts[k]
		p.SSLDir = path.Join(parts[k], "etc", "proxysql", "ssl")
		p.BindIPv4 = ipv6.Unbracket(hosts[k].Host)
	}
	return p, nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// NewFromSettings builds the Routers of a cluster (see OptionsFromSettings).
func NewFromSettings(cluster string, s *config.Settings, accounts AccountSource, log *logrus.Entry) ([]*Router, error) {
	opts, err := OptionsFromSettings(cluster, s, accounts, log)
	if err != nil {
		return nil, err
	}
	var out []*Router
	for _, o := range opts {
		r, err := New(o)
		if err != nil {
			for _, x := range out {
				x.Close()
			}
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
