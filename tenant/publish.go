package tenant

import (
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
)

// Endpoints are where tenants connect: the cluster's proxy, on IPv6 and IPv4.
type Endpoints struct {
	Proxy string // "proxysql", "haproxy", or "" when the cluster has no proxy
	IPv6  string // IPv6 literal without brackets (or a host name), "" when none
	IPv4  string // IPv4 literal (or a host name), "" when none
	Port  int
	// TLS: the proxy speaks TLS to clients (ProxySQL with the proxy tag ssl; HAProxy passes
	// the servers' TLS through, so it follows the database tag ssl).
	TLS bool
	CA  string // PEM of the cluster CA, "" when not known
}

// EndpointsFromSettings picks the first ProxySQL (proxysql-servers-ipv6 for IPv6,
// proxysql-servers for IPv4, proxysql-port), else the first HAProxy (haproxy-servers-ipv6,
// haproxy-servers, haproxy-write-port), as SlapOS publishes the root partition's ProxySQL.
// The CA is the cluster's ca-cert.pem in its working directory, when it exists.
func EndpointsFromSettings(cluster string, s *config.Settings) Endpoints {
	var e Endpoints
	var hosts, v6 []string
	switch {
	case s.ProxySQL:
		e.Proxy, e.Port = "proxysql", s.ProxySQLPort
		hosts, v6 = s.List("proxysql-servers"), s.List("proxysql-servers-ipv6")
		e.TLS = hasTag(s.ProvProxyTags, "ssl")
	case s.HAProxy:
		e.Proxy, e.Port = "haproxy", s.HAProxyWritePort
		hosts, v6 = s.List("haproxy-servers"), s.List("haproxy-servers-ipv6")
		e.TLS = hasTag(s.ProvDBTags, "ssl")
	default:
		return e
	}
	for _, h := range v6 {
		if host := hostOf(h); host != "" {
			e.IPv6 = host
			break
		}
	}
	for _, h := range hosts {
		host := hostOf(h)
		if host == "" {
			continue
		}
		ip, err := netip.ParseAddr(host)
		switch {
		case err != nil: // a name: serves both families
			if e.IPv4 == "" {
				e.IPv4 = host
			}
			if e.IPv6 == "" {
				e.IPv6 = host
			}
		case ip.Is4() || ip.Is4In6():
			if e.IPv4 == "" {
				e.IPv4 = ip.Unmap().String()
			}
		default:
			if e.IPv6 == "" {
				e.IPv6 = ip.String()
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(configurator.WorkingDir(s), cluster, "ca-cert.pem")); err == nil {
		e.CA = string(b)
	}
	return e
}

// hostOf returns the host of "host", "[v6]", "host:port" or "[v6]:port", unbracketed.
func hostOf(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if hp, err := ipv6.ParseHostPort(s, 1); err == nil {
		return ipv6.Unbracket(hp.Host)
	}
	return ipv6.Unbracket(s)
}

func hasTag(list, tag string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tag) {
			return true
		}
	}
	return false
}

// Published are the parameters published for one tenant, as SlapOS publishes them for a
// shared instance (url, url_v4) plus what a client needs to verify the server.
type Published struct {
	URL        string `json:"url,omitempty"`    // mysql://USER:PASS@[IPv6]:PORT/DB
	URLv4      string `json:"url_v4,omitempty"` // mysql://USER:PASS@IPv4:PORT/DB
	Cluster    string `json:"cluster"`
	Database   string `json:"database"`
	User       string `json:"user"`
	RequireSSL bool   `json:"require_ssl"`
	SSLCA      string `json:"ssl_ca,omitempty"` // PEM of the CA that signed the servers' certificates
}

// Publish builds a tenant's published parameters. The password is percent-encoded in the
// URLs (RFC 3986 userinfo), so any password survives a URL parser.
func Publish(cluster string, n Names, password string, requireSSL bool, e Endpoints) Published {
	p := Published{Cluster: cluster, Database: n.Database, User: n.User, RequireSSL: requireSSL, SSLCA: e.CA}
	mk := func(host string) string {
		if host == "" || e.Port == 0 {
			return ""
		}
		u := url.URL{Scheme: "mysql", User: url.UserPassword(n.User, password),
			Host: net.JoinHostPort(host, strconv.Itoa(e.Port)), Path: "/" + n.Database}
		return u.String()
	}
	p.URL, p.URLv4 = mk(e.IPv6), mk(e.IPv4)
	return p
}
