package slapos

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/tenant"
)

// PublishedFile is the file `slapos publish` writes beside config.toml: the connection
// parameters the root instance hands to SlapOS to publish.
const PublishedFile = "published.json"

// Published are the connection parameters of a repman instance: the keys of SlapOS'
// instance-repman-output-schema.json (backend-url, url, repman-password) and the username
// SlapOS' profile publishes with them, then what a user of each cluster needs (the proxy's
// addresses on IPv6 and IPv4, TLS and its CA) and, per shared instance, its url and url_v4.
type Published struct {
	BackendURL     string                      `json:"backend-url"`
	URL            string                      `json:"url"`
	Username       string                      `json:"username"`
	RepmanPassword string                      `json:"repman-password,omitempty"`
	Clusters       map[string]PublishedCluster `json:"clusters"`
	// Shared are the shared instances' parameters, by slave_reference (the file only; the
	// API gives them per cluster under /api/clusters/{c}/databases).
	Shared map[string]tenant.Published `json:"shared-instances,omitempty"`
}

// PublishedCluster is what a cluster's users connect to.
type PublishedCluster struct {
	Proxy     string   `json:"proxy"`                // "proxysql", "haproxy", "" without proxy
	ProxyIPv6 string   `json:"proxy-ipv6,omitempty"` // [IPv6]:port: the address SlapOS publishes (reachable from other networks)
	ProxyIPv4 string   `json:"proxy-ipv4,omitempty"` // IPv4:port
	TLS       bool     `json:"tls"`                  // clients must use TLS (tag ssl); accounts REQUIRE SSL
	SSLCA     string   `json:"ssl_ca,omitempty"`     // PEM of the CA that signed the servers' certificates
	Databases []string `json:"databases"`            // db-servers-hosts, for the operator
}

// PublishedFor computes the published parameters from a loaded configuration. apiAddr is
// the API's address as it listens ("" takes api-bind and api-port); withPassword adds the
// first API user's password (the file; never an API answer).
func PublishedFor(cfg *config.Config, apiAddr string, withPassword bool) (Published, error) {
	d := &cfg.Default
	p := Published{Clusters: map[string]PublishedCluster{}}
	if apiAddr == "" {
		host := d.APIBind
		if ip, err := netip.ParseAddr(ipv6.Unbracket(host)); host == "" || (err == nil && ip.IsUnspecified()) {
			host = d.MonitoringAddress
		}
		apiAddr = ipv6.HostPort{Host: ipv6.Unbracket(host), Port: d.APIPort}.String()
	}
	p.BackendURL = "https://" + apiAddr
	p.URL = p.BackendURL // no frontend here: SlapOS' url is its CDN frontend's
	users, err := d.APIUsers()
	if err != nil {
		return p, fmt.Errorf("api-credentials: %w", err)
	}
	if len(users) > 0 {
		p.Username = users[0].User
		if withPassword {
			p.RepmanPassword = users[0].Password
		}
	}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		e := tenant.EndpointsFromSettings(c.Name, &c.Settings)
		pc := PublishedCluster{Proxy: e.Proxy, TLS: e.TLS, SSLCA: e.CA, Databases: []string{}}
		if e.Port != 0 {
			if e.IPv6 != "" {
				pc.ProxyIPv6 = ipv6.HostPort{Host: e.IPv6, Port: e.Port}.String()
			}
			if e.IPv4 != "" {
				pc.ProxyIPv4 = ipv6.HostPort{Host: e.IPv4, Port: e.Port}.String()
			}
		}
		if hosts, err := c.Settings.Hosts(); err == nil {
			for _, h := range hosts {
				pc.Databases = append(pc.Databases, h.String())
			}
		}
		p.Clusters[c.Name] = pc
	}
	return p, nil
}

// WritePublished writes dir/published.json (0600: it holds the API password) from the
// configuration and, when present, dir/published-databases.json of `slapos render`.
func WritePublished(dir string, cfg *config.Config, apiAddr string) (Published, error) {
	p, err := PublishedFor(cfg, apiAddr, true)
	if err != nil {
		return p, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, PublishedDatabasesFile)); err == nil {
		if err := json.Unmarshal(b, &p.Shared); err != nil {
			return p, fmt.Errorf("%s: %w", PublishedDatabasesFile, err)
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return p, err
	}
	// Written beside, then renamed over the previous file: a reader sees one or the other.
	tmp := filepath.Join(dir, "."+PublishedFile+".tmp")
	os.Remove(tmp)
	if err := writeSynced(tmp, append(b, '\n'), 0o600); err != nil {
		return p, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, PublishedFile)); err != nil {
		os.Remove(tmp)
		return p, fmt.Errorf("write %s: %w", PublishedFile, err)
	}
	return p, nil
}

// SharedReferences lists the shared instances of p, sorted.
func (p Published) SharedReferences() []string {
	out := make([]string, 0, len(p.Shared))
	for r := range p.Shared {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
