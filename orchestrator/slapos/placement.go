package slapos

import (
	"fmt"

	"replication-manager-pro/config"
	"replication-manager-pro/orchestrator"
)

// Place computes where each node of a cluster runs on SlapOS: the k-th db-servers-hosts entry
// in the k-th slapos-db-partitions path, the k-th ProxySQL in the k-th
// slapos-proxysql-partitions path binding also on proxysql-servers-ipv6[k] (HAProxy likewise
// with slapos-haproxy-partitions and haproxy-servers-ipv6). A node without a partition entry
// gets an empty Partition (replication-manager leaves it unset too); more partitions than
// nodes is an error, as config validation says for databases. Errors name the key.
func Place(c *config.Cluster) (orchestrator.Placement, error) {
	p, err := orchestrator.Targets(c)
	if err != nil {
		return p, err
	}
	s := &c.Settings
	dbParts := s.List("slapos-db-partitions")
	if len(dbParts) > len(p.Databases) {
		return p, fmt.Errorf("slapos-db-partitions: %d partitions for %d db-servers-hosts",
			len(dbParts), len(p.Databases))
	}
	for i := range p.Databases {
		p.Databases[i].Partition = at(dbParts, p.Databases[i].Index)
	}
	parts := map[orchestrator.Kind][]string{
		orchestrator.KindProxySQL: s.List("slapos-proxysql-partitions"),
		orchestrator.KindHAProxy:  s.List("slapos-haproxy-partitions"),
	}
	for i := range p.Proxies {
		t := &p.Proxies[i]
		t.Partition = at(parts[t.Kind], t.Index)
	}
	return p, nil
}

func at(l []string, i int) string {
	if i >= 0 && i < len(l) {
		return l[i]
	}
	return ""
}
