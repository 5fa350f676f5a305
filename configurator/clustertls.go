package configurator

import (
	"path"
	"path/filepath"
	"strings"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
)

// The cluster's certificates are kept in <working dir>/<cluster>/ (ClusterTLSDir), created
// once by whoever needs them first: the daemon for the bundles, the local orchestrator for
// the servers it starts, `slapos render` for the CA it publishes to tenants.

// ClusterTLSDir is where a cluster's certificates are kept.
func ClusterTLSDir(s *config.Settings, cluster string) string {
	return path.Join(WorkingDir(s), cluster)
}

// ClusterTLSPaths are the cluster's certificate files (ClusterTLS), by file name.
func ClusterTLSPaths(s *config.Settings, cluster string) map[string]string {
	out := map[string]string{}
	for _, n := range tlsNames {
		out[n] = path.Join(ClusterTLSDir(s, cluster), n)
	}
	return out
}

// TLSHosts are the names the cluster's server certificate is made for: the databases' hosts
// and the proxies' addresses (ProxySQL and HAProxy, IPv4 and IPv6), since a client reaching
// a database through a proxy verifies the name it dialled.
func TLSHosts(s *config.Settings) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		h = ipv6.Unbracket(strings.TrimSpace(h))
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	if hosts, err := s.Hosts(); err == nil {
		for _, h := range hosts {
			add(h.Host)
		}
	}
	for _, k := range []string{"proxysql-servers", "proxysql-servers-ipv6", "haproxy-servers", "haproxy-servers-ipv6"} {
		for _, e := range s.List(k) {
			if hp, err := ipv6.ParseHostPort(e, 1); err == nil {
				add(hp.Host)
			} else {
				add(e)
			}
		}
	}
	return out
}

// ClusterTLSFor returns a cluster's certificates, creating them the first time for
// TLSHosts (ClusterTLS).
func ClusterTLSFor(s *config.Settings, cluster string) (*TLSFiles, error) {
	return ClusterTLS(ClusterTLSDir(s, cluster), cluster, TLSHosts(s))
}

// ServerTLSArgs are the mariadbd options serving TLS with the cluster's certificates kept
// in dir (ClusterTLSDir), as the ssl tag's configuration fragment does in a bundle.
func ServerTLSArgs(dir string) []string {
	return []string{
		"--ssl-ca=" + filepath.Join(dir, "ca-cert.pem"),
		"--ssl-cert=" + filepath.Join(dir, "server-cert.pem"),
		"--ssl-key=" + filepath.Join(dir, "server-key.pem"),
	}
}

// HasTag reports whether a comma-separated tag list holds tag (case-insensitive).
func HasTag(list, tag string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tag) {
			return true
		}
	}
	return false
}
