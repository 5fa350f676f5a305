// Package orchestrator defines how a cluster provisions, starts and stops its databases and
// proxies, whatever runs them: local processes, SlapOS partitions, on-premise hosts. Each
// backend lives in its own package and registers a Factory under its prov-orchestrator name;
// the daemon looks it up with Lookup. Implementations speak topology, ipv6 and config types
// only and never import package cluster.
//
// Every call reports its completion, with an error or nil. replication-manager's SlapOS
// proxy provisioning never signalled it and left the whole cluster provisioning blocked
// (repman-compat.md J.4); here a call that has nothing to do returns nil at once.
package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Kind is what a Target runs.
type Kind string

const (
	KindDatabase Kind = "database"
	KindProxySQL Kind = "proxysql"
	KindHAProxy  Kind = "haproxy"
)

// IsProxy reports a proxy kind.
func (k Kind) IsProxy() bool { return k == KindProxySQL || k == KindHAProxy }

// Target is one database or proxy of a cluster and where it runs.
type Target struct {
	Kind  Kind
	Index int // position in its configuration list (db-servers-hosts, proxysql-servers, ...)
	// Addr is the address the manager knows the node by, as replication-manager does: a
	// database's host:port, a ProxySQL's host and admin port, an HAProxy's host and API port.
	Addr ipv6.HostPort
	// Partition is the node's SlapOS partition path (slapos-*-partitions[Index]); "" when the
	// list names none.
	Partition string
	// IPv6Bind is a proxy's extra IPv6 bind from proxysql-servers-ipv6[Index] (or
	// haproxy-servers-ipv6), verbatim, brackets included: "[2001:db8::5]".
	IPv6Bind string
}

func (t Target) String() string { return string(t.Kind) + " " + t.Addr.String() }

// Placement is where every node of a cluster runs: databases in db-servers-hosts order, then
// proxies (ProxySQL then HAProxy, each in its list's order).
type Placement struct {
	Databases []Target
	Proxies   []Target
}

// Find returns the node at addr: databases first, then proxies, as replication-manager's
// server lookup does. IPv6 literals compare as addresses ("2001:DB8::1" is "2001:db8::1"),
// host names case-insensitively.
func (p Placement) Find(addr ipv6.HostPort) (Target, bool) {
	for _, l := range [][]Target{p.Databases, p.Proxies} {
		for _, t := range l {
			if ipv6.SameAddr(t.Addr, addr) {
				return t, true
			}
		}
	}
	return Target{}, false
}

// Targets lists a cluster's nodes from its settings without partitions: every orchestrator
// starts from it. ProxySQL nodes are listed when proxysql is on, HAProxy nodes when haproxy is.
func Targets(c *config.Cluster) (Placement, error) {
	s := &c.Settings
	var p Placement
	hosts, err := s.Hosts()
	if err != nil {
		return p, fmt.Errorf("cluster %s: db-servers-hosts: %w", c.Name, err)
	}
	for i, h := range hosts {
		p.Databases = append(p.Databases, Target{Kind: KindDatabase, Index: i, Addr: h})
	}
	if s.ProxySQL {
		l, err := s.ProxySQLHosts()
		if err != nil {
			return p, fmt.Errorf("cluster %s: proxysql-servers: %w", c.Name, err)
		}
		binds := s.List("proxysql-servers-ipv6")
		for i, h := range l {
			p.Proxies = append(p.Proxies, Target{Kind: KindProxySQL, Index: i, Addr: h, IPv6Bind: at(binds, i)})
		}
	}
	if s.HAProxy {
		l, err := ipv6.ParseList(s.HAProxyServers, s.HAProxyAPIPort)
		if err != nil {
			return p, fmt.Errorf("cluster %s: haproxy-servers: %w", c.Name, err)
		}
		binds := s.List("haproxy-servers-ipv6")
		for i, h := range l {
			p.Proxies = append(p.Proxies, Target{Kind: KindHAProxy, Index: i, Addr: h, IPv6Bind: at(binds, i)})
		}
	}
	return p, nil
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

// ProxyUp tells whether a proxy runs (its monitoring state is not failed). A nil ProxyUp
// counts every proxy as running: the manager does not monitor proxies' liveness yet.
type ProxyUp func(Target) bool

// Up applies f, nil meaning "running".
func (f ProxyUp) Up(t Target) bool { return f == nil || f(t) }

// ErrNotSupported is returned (wrapped) by orchestrators that cannot do an operation.
var ErrNotSupported = errors.New("not supported by this orchestrator")

// Orchestrator provisions and drives the nodes of clusters. Implementations are safe for
// concurrent use; every method returns when its work is done or handed over (for SlapOS:
// when the request is published for the partition's agent), never later.
type Orchestrator interface {
	// Name is the prov-orchestrator value, e.g. "slapos".
	Name() string
	// Placement says where each node of the cluster runs.
	Placement(c *config.Cluster) (Placement, error)

	ProvisionDatabase(ctx context.Context, c *config.Cluster, db Target) error
	UnprovisionDatabase(ctx context.Context, c *config.Cluster, db Target) error
	StartDatabase(ctx context.Context, c *config.Cluster, db Target) error
	// StopDatabase stops a database; snap (may be nil) tells whether it is the master and
	// its version.
	StopDatabase(ctx context.Context, c *config.Cluster, db Target, snap *topology.Snapshot) error

	ProvisionProxy(ctx context.Context, c *config.Cluster, p Target) error
	UnprovisionProxy(ctx context.Context, c *config.Cluster, p Target) error
	StartProxy(ctx context.Context, c *config.Cluster, p Target) error
	StopProxy(ctx context.Context, c *config.Cluster, p Target) error

	// IsProvisioned is the cluster's isProvision flag, computed each monitoring tick from
	// the latest snapshot (may be nil) and the proxies' liveness.
	IsProvisioned(c *config.Cluster, snap *topology.Snapshot, proxyUp ProxyUp) (bool, error)
}

// DatabaseRunning reports whether the snapshot shows the database at addr running: probed
// and in a state other than Failed, Suspect or ErrorAuth. A server the snapshot does not
// know, or has not probed yet, is not running.
func DatabaseRunning(snap *topology.Snapshot, addr ipv6.HostPort) bool {
	if snap == nil {
		return false
	}
	for i := range snap.Servers {
		s := &snap.Servers[i]
		if ipv6.SameAddr(s.Addr, addr) {
			return s.State != topology.StateUnknown && !s.State.IsDown()
		}
	}
	return false
}
