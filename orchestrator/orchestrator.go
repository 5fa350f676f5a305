// Package orchestrator defines how a cluster provisions, starts and stops its databases and
// proxies, whatever runs them: local processes, SlapOS partitions, on-premise hosts. Each
// backend lives in its own package and registers a Factory under its prov-orchestrator name,
// as Nomad's task drivers do. The daemon builds one Orchestrator per cluster with New, from
// that cluster's configuration, validated once; the instance lives as long as the cluster's
// monitor (a settings reload builds a new one, handed the previous one). Its methods take
// only what they need: a node's address, the latest snapshot. Implementations speak
// topology, ipv6 and config types only and never import package cluster.
//
// Every call reports its completion, with an error or nil. replication-manager's SlapOS
// proxy provisioning never signalled it and left the whole cluster provisioning blocked
// (repman-compat.md J.4); here a call that has nothing to do returns nil at once.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	Cluster   string // the cluster's name
	Databases []Target
	Proxies   []Target
}

// Clone returns a copy that shares nothing with p.
func (p Placement) Clone() Placement {
	return Placement{Cluster: p.Cluster, Databases: slices.Clone(p.Databases), Proxies: slices.Clone(p.Proxies)}
}

// Find returns the node at addr, compared with ipv6.SameAddr: databases first, then
// proxies, as replication-manager's server lookup does.
func (p Placement) Find(addr ipv6.HostPort) (Target, bool) {
	for _, l := range [][]Target{p.Databases, p.Proxies} {
		if t, ok := find(l, addr); ok {
			return t, true
		}
	}
	return Target{}, false
}

func find(l []Target, addr ipv6.HostPort) (Target, bool) {
	for _, t := range l {
		if ipv6.SameAddr(t.Addr, addr) {
			return t, true
		}
	}
	return Target{}, false
}

// ErrUnknownNode is returned (wrapped) for an address that is not one of the cluster's
// databases (or proxies).
var ErrUnknownNode = errors.New("not a node of this cluster")

// Database returns the database at addr; what a method does with it is named by what
// ("start", "stop", ...) in the error when the cluster has no database there.
func (p Placement) Database(what string, addr ipv6.HostPort) (Target, error) {
	if t, ok := find(p.Databases, addr); ok {
		return t, nil
	}
	return Target{}, fmt.Errorf("cluster %s: %s database %s: %w", p.Cluster, what, addr, ErrUnknownNode)
}

// Proxy returns the proxy at addr (a ProxySQL by its admin port, an HAProxy by its API
// port), or an error naming what and the address.
func (p Placement) Proxy(what string, addr ipv6.HostPort) (Target, error) {
	if t, ok := find(p.Proxies, addr); ok {
		return t, nil
	}
	return Target{}, fmt.Errorf("cluster %s: %s proxy %s: %w", p.Cluster, what, addr, ErrUnknownNode)
}

// Targets lists a cluster's nodes from its settings without partitions: every orchestrator
// starts from it. ProxySQL nodes are listed when proxysql is on, HAProxy nodes when haproxy is.
// Errors name the configuration key.
func Targets(c *config.Cluster) (Placement, error) {
	s := &c.Settings
	p := Placement{Cluster: c.Name}
	hosts, err := s.Hosts()
	if err != nil {
		return p, fmt.Errorf("db-servers-hosts: %w", err)
	}
	for i, h := range hosts {
		p.Databases = append(p.Databases, Target{Kind: KindDatabase, Index: i, Addr: h})
	}
	if s.ProxySQL {
		l, err := s.ProxySQLHosts()
		if err != nil {
			return p, fmt.Errorf("proxysql-servers: %w", err)
		}
		binds := s.List("proxysql-servers-ipv6")
		for i, h := range l {
			p.Proxies = append(p.Proxies, Target{Kind: KindProxySQL, Index: i, Addr: h, IPv6Bind: at(binds, i)})
		}
	}
	if s.HAProxy {
		l, err := ipv6.ParseList(s.HAProxyServers, s.HAProxyAPIPort)
		if err != nil {
			return p, fmt.Errorf("haproxy-servers: %w", err)
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

// Orchestrator provisions and drives the nodes of one cluster. A Factory builds it from the
// cluster's configuration, which it validates then; the instance holds what it needs of that
// configuration and any state of its own (the processes it started), so its methods take
// only a node's address (compared with ipv6.SameAddr) and, where it matters, the latest
// snapshot. An address that is not a database (a proxy) of the cluster is an error wrapping
// ErrUnknownNode.
//
// Implementations are safe for concurrent use; every method returns when its work is done
// or handed over (for SlapOS: when the request is published for the partition's agent),
// never later.
type Orchestrator interface {
	// Name is the prov-orchestrator value, e.g. "slapos".
	Name() string
	// Placement says where each node of the cluster runs (a copy the caller may keep).
	Placement() Placement

	ProvisionDatabase(ctx context.Context, db ipv6.HostPort) error
	UnprovisionDatabase(ctx context.Context, db ipv6.HostPort) error
	StartDatabase(ctx context.Context, db ipv6.HostPort) error
	// StopDatabase stops a database; snap (may be nil) tells whether it is the master and
	// its version.
	StopDatabase(ctx context.Context, db ipv6.HostPort, snap *topology.Snapshot) error

	// The proxy methods take a ProxySQL's admin address, an HAProxy's API address.
	ProvisionProxy(ctx context.Context, proxy ipv6.HostPort) error
	UnprovisionProxy(ctx context.Context, proxy ipv6.HostPort) error
	StartProxy(ctx context.Context, proxy ipv6.HostPort) error
	StopProxy(ctx context.Context, proxy ipv6.HostPort) error

	// IsProvisioned is the cluster's isProvision flag, computed each monitoring tick from
	// the latest snapshot (may be nil) and the proxies' liveness.
	IsProvisioned(snap *topology.Snapshot, proxyUp ProxyUp) (bool, error)
}

// DatabaseRunning reports whether the snapshot shows the database at addr running: probed
// and in a state other than Failed, Suspect or ErrorAuth. A server the snapshot does not
// know, or has not probed yet, is not running.
func DatabaseRunning(snap *topology.Snapshot, addr ipv6.HostPort) bool {
	s, ok := snap.Find(addr)
	return ok && s.State != topology.StateUnknown && !s.State.IsDown()
}
