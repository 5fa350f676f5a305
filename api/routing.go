package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"replication-manager-pro/router"
)

// The routing view: GET /api/clusters/{c}/routing lists each router of the cluster (its
// ProxySQL or HAProxy) with its backends as the router last read them and the routing
// intent it derives from the latest snapshot (router.Viewer). A router is asked at most
// once per routingViewTTL, whoever asks (a ProxySQL view costs one SELECT on its admin
// interface), and for at most routingViewTimeout.
const (
	routingViewTTL     = 2 * time.Second
	routingViewTimeout = 2 * time.Second
)

// RoutingView is the answer of the routing route.
type RoutingView struct {
	Routers []RouterView `json:"routers"`
}

// RouterView is one router: router.View with its intent in the API's form.
type RouterView struct {
	router.View
	WriterReads bool           `json:"writerReads"` // the master takes reads too
	Intent      []ServerIntent `json:"intent"`
}

// ServerIntent is the route of one server.
type ServerIntent struct {
	Server      string `json:"server"`
	Route       string `json:"route"` // writer, reader, drained, offline
	Master      bool   `json:"master"`
	Maintenance bool   `json:"maintenance"`
	Reason      string `json:"reason"`
}

type routingCache struct {
	mu    sync.Mutex
	views map[router.Router]cachedView
}

type cachedView struct {
	at time.Time
	v  RouterView
}

func (c *routingCache) view(ctx context.Context, r router.Router, read func(context.Context) router.View) RouterView {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.views[r]; ok && time.Since(x.at) < routingViewTTL {
		return x.v
	}
	rctx, cancel := context.WithTimeout(ctx, routingViewTimeout)
	v := read(rctx)
	cancel()
	out := RouterView{View: v, WriterReads: v.Intent.WriterReads, Intent: make([]ServerIntent, 0, len(v.Intent.Servers))}
	for _, si := range v.Intent.Servers {
		out.Intent = append(out.Intent, ServerIntent{Server: si.Addr.String(), Route: string(si.Route), Master: si.Master,
			Maintenance: si.Maintenance, Reason: si.Reason})
	}
	if out.Backends == nil {
		out.Backends = []router.Backend{}
	}
	if c.views == nil || len(c.views) > 1024 { // routers of reloaded clusters are dropped wholesale
		c.views = map[router.Router]cachedView{}
	}
	c.views[r] = cachedView{at: time.Now(), v: out}
	return out
}

func (s *Server) handleRouting(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	snap := rc.member.Monitor.Snapshot()
	out := RoutingView{Routers: []RouterView{}}
	for _, rt := range rc.member.Monitor.Config().Failover.Routers {
		vw, ok := rt.(router.Viewer)
		if !ok {
			out.Routers = append(out.Routers, RouterView{View: router.View{Name: rt.Name(), Error: "this router cannot show its backends",
				Backends: []router.Backend{}}, Intent: []ServerIntent{}})
			continue
		}
		out.Routers = append(out.Routers, s.routing.view(r.Context(), rt, func(ctx context.Context) router.View { return vw.View(ctx, snap) }))
	}
	writeJSON(w, http.StatusOK, out)
}
