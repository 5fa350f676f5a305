package configurator

import (
	"bytes"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/proxysql"
)

// ProxyParams is everything a ProxySQL bundle depends on.
type ProxyParams struct {
	ProxySQL proxysql.ConfigParams
	// TLS, when set, goes to etc/proxysql/ssl/ under the names proxysql.cnf refers to
	// (proxysql.CAFile, client-cert.pem, client-key.pem) for backend TLS, and into the datadir as
	// proxysql-{ca,cert,key}.pem for frontend TLS (frontendTLS).
	TLS     *TLSFiles
	Version string
	Time    time.Time
}

// Paths of proxysql.cnf in a proxy bundle: replication-manager writes the first, the
// SlapOS download-proxy-config script copies the second; both hold the same bytes.
const (
	ProxySQLCnfPath       = "etc/proxysql/proxysql.cnf"
	ProxySQLCnfSlapOSPath = "etc/proxysql.cnf"
)

// ProxyParamsFromSettings returns the bundle parameters of the k-th ProxySQL of a cluster.
func ProxyParamsFromSettings(s *config.Settings, k int) (ProxyParams, error) {
	cp, err := proxysql.ConfigParamsFromSettings(s, k)
	if err != nil {
		return ProxyParams{}, err
	}
	return ProxyParams{ProxySQL: cp}, nil
}

// GenerateProxy returns the entries of a ProxySQL bundle. proxysql.cnf carries the admin
// and backend passwords: its mode is 0600.
func GenerateProxy(p ProxyParams) ([]Entry, error) {
	cnf, err := proxysql.GenerateConfig(p.ProxySQL)
	if err != nil {
		return nil, err
	}
	data := append([]byte(Header(p.Version, p.Time)), cnf...)
	out := []Entry{
		{Path: "etc", Kind: KindDir, Mode: 0o755},
		{Path: "etc/proxysql", Kind: KindDir, Mode: 0o750},
		{Path: "etc/proxysql/ssl", Kind: KindDir, Mode: 0o750},
		{Path: "data", Kind: KindDir, Mode: 0o750},
		{Path: "log", Kind: KindDir, Mode: 0o750},
		{Path: ProxySQLCnfPath, Kind: KindFile, Mode: 0o600, Data: data},
		{Path: ProxySQLCnfSlapOSPath, Kind: KindFile, Mode: 0o600, Data: data},
	}
	if p.TLS != nil {
		for _, f := range []struct {
			name string
			data []byte
			mode fs.FileMode
		}{{proxysql.CAFile, p.TLS.CA, 0o644}, {"client-cert.pem", p.TLS.ClientCert, 0o644}, {"client-key.pem", p.TLS.ClientKey, 0o600}} {
			if len(f.data) > 0 {
				out = append(out, Entry{Path: "etc/proxysql/ssl/" + f.name, Kind: KindFile, Mode: f.mode, Data: f.data})
			}
		}
		out = append(out, frontendTLS(p)...)
	}
	sortEntries(out)
	return out, nil
}

// frontendTLS returns the files ProxySQL serves its clients with: it reads
// <datadir>/proxysql-{ca,cert,key}.pem and generates self-signed ones when they are absent,
// which no client can verify. With the cluster's CA and server certificate there, tenants
// verify ProxySQL against the CA published to them. They go into the bundle when the datadir
// lies under the bundle's root (the partition on SlapOS, whose datadir is the partition).
func frontendTLS(p ProxyParams) []Entry {
	const sslSuffix = "/etc/proxysql/ssl"
	if !strings.HasSuffix(p.ProxySQL.SSLDir, sslSuffix) || len(p.TLS.ServerCert) == 0 || len(p.TLS.ServerKey) == 0 {
		return nil
	}
	root := strings.TrimSuffix(p.ProxySQL.SSLDir, sslSuffix)
	if root == "" {
		root = "/"
	}
	rel, err := filepath.Rel(root, p.ProxySQL.Datadir)
	if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return nil
	}
	at := func(name string) string { return path.Join(filepath.ToSlash(rel), name) }
	return []Entry{
		{Path: at("proxysql-ca.pem"), Kind: KindFile, Mode: 0o644, Data: p.TLS.CA},
		{Path: at("proxysql-cert.pem"), Kind: KindFile, Mode: 0o644, Data: p.TLS.ServerCert},
		{Path: at("proxysql-key.pem"), Kind: KindFile, Mode: 0o600, Data: p.TLS.ServerKey},
	}
}

// ProxyBundle returns the config.tar.gz of a ProxySQL.
func ProxyBundle(p ProxyParams) ([]byte, error) {
	e, err := GenerateProxy(p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := WriteTarGz(&b, e, p.Time); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
