package configurator

import (
	"errors"
	"fmt"
	"hash/crc32"
	"path"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Orchestrators whose bundles are self-contained (absolute paths into the node's own tree).
const (
	OrchestratorSlapOS = "slapos"
	OrchestratorLocal  = "local"
)

// Params is everything a database bundle depends on. Generate is a pure function of it.
type Params struct {
	Cluster string
	Server  ipv6.HostPort // host unbracketed, as ipv6.ParseHostPort gives it
	// ServerID is the server's replication-manager Id ("db" + CRC64 digits); empty means
	// topology.ServerIDFor(Server). server_id is derived from it (ServerIDFromID).
	ServerID string
	DomainID uint32 // gtid_domain_id

	Orchestrator string // prov-orchestrator
	Partition    string // slapos: the partition directory (slapos-db-partitions[k])
	NodeDatadir  string // local: <working dir>/<cluster>/<host>_<port>

	Tags      []string // prov-db-tags entries
	Resources Resources

	// User and Password go to etc/mysql/dbjob.cnf (the partition's job runner logs in
	// through the socket with them).
	User, Password string
	// TLS holds the cluster's certificates, required with tag ssl.
	TLS *TLSFiles

	Version string    // generator version in headers; "" means internal/version
	Time    time.Time // generation time in headers and tar entries; zero omits it (reproducible)
}

// TLSFiles are PEM contents copied to etc/mysql/ssl/ under the original's names.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey []byte
}

// Layout is where the bundle's pieces live on the database's machine once unpacked.
type Layout struct {
	Confdir   string // etc/mysql of the bundle; my.cnf includes Confdir/conf.d and Confdir/custom.d
	Datadir   string // MariaDB datadir; the bundle's data/ goes there
	SystemDir string // Datadir/.system: tmp, logs, redo/undo, binary and relay logs
	Socket    string
	SSLDir    string
}

// LayoutFor rewrites the paths for the orchestrator: slapos uses the partition
// (<p>/etc/mysql, <p>/var/lib/mysql, <p>/var/mysqld.sock), local the node's datadir
// (<d>/init/etc/mysql, <d>/var, <d>/var/mysqld.sock); other orchestrators use the
// system paths of a container or package install (/etc/mysql, /var/lib/mysql).
func LayoutFor(p Params) (Layout, error) {
	var l Layout
	switch p.Orchestrator {
	case OrchestratorSlapOS:
		if err := checkPath("slapos-db-partitions entry", p.Partition); err != nil {
			return Layout{}, err
		}
		part := path.Clean(p.Partition)
		l = Layout{Confdir: part + "/etc/mysql", Datadir: part + "/var/lib/mysql", Socket: part + "/var/mysqld.sock"}
	case OrchestratorLocal:
		if err := checkPath("node datadir", p.NodeDatadir); err != nil {
			return Layout{}, err
		}
		d := path.Clean(p.NodeDatadir)
		l = Layout{Confdir: d + "/init/etc/mysql", Datadir: d + "/var", Socket: d + "/var/mysqld.sock"}
	default:
		l = Layout{Confdir: "/etc/mysql", Datadir: "/var/lib/mysql", Socket: "/run/mysqld/mysqld.sock"}
	}
	l.SystemDir = l.Datadir + "/.system"
	l.SSLDir = l.Confdir + "/ssl"
	return l, nil
}

// checkPath refuses what an option file cannot carry verbatim.
func checkPath(what, p string) error {
	if p == "" {
		return fmt.Errorf("%s: empty path", what)
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("%s: %q is not absolute", what, p)
	}
	if strings.ContainsAny(p, "\n\r#;'\"\\ \t") {
		return fmt.Errorf("%s: %q holds a character an option file cannot carry (space, quote, #, ;, backslash)", what, p)
	}
	return nil
}

// ServerIDFromID derives server_id from a replication-manager server Id as the original
// does: characters 2..9 of the Id ("db" + decimal CRC64), i.e. the first eight digits of
// the checksum. Eight digits are at most 99999999, inside server_id's 32-bit range; a
// result of 0 (invalid for replication) becomes 1.
func ServerIDFromID(id string) (uint32, error) {
	if len(id) < 3 {
		return 0, fmt.Errorf("server id %q: too short", id)
	}
	digits := id[2:min(len(id), 10)]
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("server id %q: characters 2..9 are not digits", id)
	}
	if n == 0 {
		n = 1
	}
	return uint32(n), nil
}

// DomainIDFor is gtid_domain_id: prov-db-domain, except that a multi-source cluster
// (replication-source-name set) left at domain 0 gets a checksum of its name, so that two
// clusters feeding one replica do not share a domain.
func DomainIDFor(cluster string, domain int, sourceName string) (uint32, error) {
	if domain < 0 || int64(domain) > 0xffffffff {
		return 0, fmt.Errorf("prov-db-domain: %d out of 0..4294967295", domain)
	}
	if sourceName != "" && domain == 0 {
		return crc32.Checksum([]byte(cluster), crc32.MakeTable(0xD5828281)), nil
	}
	return uint32(domain), nil
}

// WorkingDir is the monitor's working directory: monitoring-datadir, or
// <monitoring-basedir>/data when monitoring-basedir is not "system".
func WorkingDir(s *config.Settings) string {
	if s.MonitoringBasedir != "" && s.MonitoringBasedir != "system" {
		return path.Join(s.MonitoringBasedir, "data")
	}
	return s.MonitoringDatadir
}

// NodeDatadir is <working dir>/<cluster>/<host>_<port>, the host keeping IPv6 brackets.
func NodeDatadir(s *config.Settings, cluster string, h ipv6.HostPort) string {
	return path.Join(WorkingDir(s), cluster, fmt.Sprintf("%s_%d", h.HostBracketed(), h.Port))
}

// ParamsFromSettings returns the bundle parameters of the k-th db-servers-hosts entry of a
// cluster. TLS is left nil: the caller adds the cluster's certificates for tag ssl.
func ParamsFromSettings(cluster string, s *config.Settings, k int) (Params, error) {
	hosts, err := s.Hosts()
	if err != nil {
		return Params{}, fmt.Errorf("db-servers-hosts: %w", err)
	}
	if k < 0 || k >= len(hosts) {
		return Params{}, fmt.Errorf("db-servers-hosts: no entry %d (%d given)", k, len(hosts))
	}
	cred, err := s.DBCredential()
	if err != nil {
		return Params{}, fmt.Errorf("db-servers-credential: %w", err)
	}
	dom, err := DomainIDFor(cluster, s.ProvDBDomain, s.ReplicationSourceName)
	if err != nil {
		return Params{}, err
	}
	p := Params{
		Cluster: cluster, Server: hosts[k], DomainID: dom, Orchestrator: s.ProvOrchestrator,
		Tags: s.List("prov-db-tags"),
		Resources: Resources{MemoryMB: s.ProvDBMemory, SharedPct: s.ProvDBMemorySharedPct, Cores: s.ProvDBCPUCores,
			IOPS: s.ProvDBDiskIOPS, IOPSLatency: s.ProvDBDiskIOPSLatency, MaxConnections: s.ProvDBMaxConnections,
			ExpireLogDays: s.ProvDBExpireLogDays},
		User: cred.User, Password: cred.Password,
	}
	switch s.ProvOrchestrator {
	case OrchestratorSlapOS:
		parts := s.List("slapos-db-partitions")
		if k >= len(parts) {
			return Params{}, fmt.Errorf("slapos-db-partitions: no entry %d for db-servers-hosts %s", k, hosts[k])
		}
		p.Partition = parts[k]
	case OrchestratorLocal:
		p.NodeDatadir = NodeDatadir(s, cluster, hosts[k])
	}
	return p, nil
}

// Vars are the values the fragment templates see.
type Vars struct {
	Host     string // the server's host, unbracketed (bind_address, report_host)
	Port     int
	ServerID uint32
	DomainID uint32
	Layout
	S Sizing
}

func (p Params) vars(tags TagSet) (Vars, error) {
	if p.Server.Host == "" || p.Server.Port <= 0 || p.Server.Port > 65535 {
		return Vars{}, fmt.Errorf("server %q: host and port 1..65535 required", p.Server.String())
	}
	host := ipv6.Unbracket(p.Server.Host)
	if strings.ContainsAny(host, " \t\n\r#;'\"\\") {
		return Vars{}, fmt.Errorf("server %q: host holds a character an option file cannot carry", host)
	}
	id := p.ServerID
	if id == "" {
		id = topology.ServerIDFor(p.Server)
	}
	sid, err := ServerIDFromID(id)
	if err != nil {
		return Vars{}, err
	}
	l, err := LayoutFor(p)
	if err != nil {
		return Vars{}, err
	}
	sz, err := Size(p.Resources, tags)
	if err != nil {
		return Vars{}, err
	}
	if tags.Has("ssl") && (p.TLS == nil || len(p.TLS.CA) == 0 || len(p.TLS.ServerCert) == 0 || len(p.TLS.ServerKey) == 0) {
		return Vars{}, errors.New("tag ssl: the CA, server certificate and server key are required")
	}
	return Vars{Host: host, Port: p.Server.Port, ServerID: sid, DomainID: p.DomainID, Layout: l, S: sz}, nil
}

// VarsFor returns the values the fragments of p are rendered with (see RenderFragment).
func VarsFor(p Params) (Vars, error) {
	tags, err := ParseTags(p.Tags)
	if err != nil {
		return Vars{}, err
	}
	return p.vars(tags)
}
