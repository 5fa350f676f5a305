package router

import (
	"context"
	"time"

	"replication-manager-pro/topology"
)

// Viewer is implemented by routers that can show what they route, for operators (the
// API's routing view and the UI's proxies panel). It is read-only: it changes nothing in
// the proxy and never waits on the router's own work for long.
type Viewer interface {
	// View describes the proxy's backends as the router last read them (or reads them
	// now, bounded by ctx) and the routing intent the router computes from s.
	View(ctx context.Context, s *topology.Snapshot) View
}

// View is a router's backends and its routing intent.
type View struct {
	Name string `json:"name"` // Router.Name()
	Kind string `json:"kind"` // "haproxy", "proxysql"
	// ReadAt is when the backends were read from the proxy; zero when never.
	ReadAt time.Time `json:"readAt"`
	// Error is why the backends could not be read.
	Error string `json:"error,omitempty"`
	// Groups are the proxy's groups of backends: HAProxy's write and read backends,
	// ProxySQL's writer, reader and offline hostgroups.
	Groups   []Group   `json:"groups"`
	Backends []Backend `json:"backends"`
	// Intent is the routing the router derives from the snapshot (IntentFor with its own
	// options: read-on-master, lag bound, operator maintenance).
	Intent Intent `json:"-"`
}

// Group is one backend group of a proxy.
type Group struct {
	Name string `json:"name"` // "10", "rmp_write"...
	Role string `json:"role"` // "write", "read", "offline"
}

// Backend is one server line of one group, as the proxy runs it.
type Backend struct {
	Group  string `json:"group"`
	Server string `json:"server"` // host:port when known, else the proxy's own name for it
	State  string `json:"state"`  // HAProxy: ready, drain, maint; ProxySQL: ONLINE, OFFLINE_SOFT...
}
