// Package router defines how the cluster tells traffic routers (ProxySQL, HAProxy, ...) about
// topology changes. Implementations live in their own packages and speak topology types only;
// package cluster knows this interface, never an implementation.
package router

import (
	"context"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Router routes client traffic to a cluster's servers.
type Router interface {
	// Name identifies the router in logs and events, e.g. "haproxy 127.0.0.1:1999".
	Name() string
	// Bootstrap sets the routing from a snapshot (first tick, or after a restart).
	Bootstrap(ctx context.Context, s *topology.Snapshot) error
	// Failover moves writes from oldMaster to newMaster; it is called once the new master is
	// writable, and must stop sending writes to the old one.
	Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error
	// Maintenance takes a server out of routing (on) or puts it back (off).
	Maintenance(ctx context.Context, server ipv6.HostPort, on bool) error
	// Reconcile brings the routing in line with a snapshot; called every tick, so it must
	// be cheap when nothing changed.
	Reconcile(ctx context.Context, s *topology.Snapshot) error
}
