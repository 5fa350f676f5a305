package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
)

// route is one entry of the route table. Every route answers GET and POST (and HEAD), as
// the original's router restricted no method.
type route struct {
	pattern   string
	protected bool   // needs a valid token (401 otherwise)
	grant     string // ACL grant needed besides the token ("" = any valid user)
	// plain: always served on the plain HTTP listener; the other routes are there only
	// when api-https-bind is false.
	plain bool
	// action: the query string and body are parsed strictly against params before the
	// handler runs (input.go); a request that does not parse is a 400 naming the field.
	action  bool
	params  []argSpec
	handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx)
}

// reqCtx is what the middleware resolved for a handler.
type reqCtx struct {
	user   string
	member *cluster.Member // for protected routes with {c}: the running cluster
	in     values          // for action routes: the validated parameters
}

// Parameters of the action routes.
var (
	pDryRun     = argSpec{name: "dryRun", kind: boolParam}
	pForce      = argSpec{name: "force", kind: boolParam}
	pPrefmaster = argSpec{name: "prefmaster", kind: hostPortParam}
	pCount      = argSpec{name: "n", kind: countParam}
)

const (
	clusterPrefix = "/api/clusters/{c}"
	serverPrefix  = clusterPrefix + "/servers/{s}/actions/"
)

// routes is the route table (see docs/api.md).
func (s *Server) routes() []route {
	rt := []route{
		// Unprotected.
		{pattern: "/api/status", plain: true, handler: s.handleStatus},
		{pattern: clusterPrefix + "/status", plain: true, handler: s.handleClusterStatus},
		{pattern: clusterPrefix + "/servers/{host}/is-master", plain: true, handler: s.handleIsMaster},
		{pattern: clusterPrefix + "/servers/{host}/is-slave", plain: true, handler: s.handleIsSlave},
		{pattern: clusterPrefix + "/servers/{host}/{port}/is-master", plain: true, handler: s.handleIsMaster},
		{pattern: clusterPrefix + "/servers/{host}/{port}/is-slave", plain: true, handler: s.handleIsSlave},

		// Login: on the plain listener only with the protected routes (api-https-bind false),
		// so that no password crosses a plain listener whose tokens would be useless there.
		{pattern: "/api/login", handler: func(w http.ResponseWriter, r *http.Request, _ *reqCtx) { s.handleLogin(w, r) }},

		// Protected, global.
		{pattern: "/api/clusters", protected: true, handler: s.handleClusters},
		{pattern: "/api/managers", protected: true, handler: s.handleManagers},
		{pattern: "/api/slapos/published", protected: true, handler: s.handlePublished}, // published.go
		{pattern: "/api/clusters/actions/add/{c}", protected: true, grant: GrantClusterCreate, action: true, handler: s.handleAddCluster},
		{pattern: "/api/clusters/actions/delete/{c}", protected: true, grant: GrantClusterDelete, action: true, handler: s.handleDeleteCluster},

		// Protected, per cluster.
		{pattern: clusterPrefix, protected: true, handler: s.handleCluster},
		{pattern: clusterPrefix + "/topology/servers", protected: true, handler: s.handleServers},
		{pattern: clusterPrefix + "/topology/master", protected: true, handler: s.handleMaster},
		{pattern: clusterPrefix + "/topology/slaves", protected: true, handler: s.handleSlaves},
		{pattern: clusterPrefix + "/topology/alerts", protected: true, handler: s.handleAlerts},
		{pattern: clusterPrefix + "/topology/crashes", protected: true, handler: s.handleCrashes},
		{pattern: clusterPrefix + "/diffvariables", protected: true, grant: GrantDBShowVariables, handler: s.handleDiffVariables},
		{pattern: clusterPrefix + "/certificates", protected: true, handler: s.handleCertificates},
		{pattern: clusterPrefix + "/topology/logs", protected: true, action: true, params: []argSpec{pCount}, handler: s.handleLogs},
		{pattern: clusterPrefix + "/actions/failover", protected: true, grant: GrantClusterFailover, action: true, params: []argSpec{pForce, pDryRun}, handler: s.handleFailover},
		{pattern: clusterPrefix + "/actions/switchover", protected: true, grant: GrantClusterSwitchover, action: true, params: []argSpec{pPrefmaster, pDryRun}, handler: s.handleSwitchover},
		{pattern: clusterPrefix + "/actions/reset-failover-control", protected: true, grant: GrantClusterResetFailoverControl, action: true, handler: s.handleResetFailoverControl},
		{pattern: clusterPrefix + "/actions/waitdatabases", protected: true, action: true, handler: s.handleWaitDatabases},
		{pattern: clusterPrefix + "/actions/replication/cleanup", protected: true, grant: GrantClusterReplicationCleanup, action: true, params: []argSpec{pDryRun}, handler: s.handleReplicationCleanup},
		{pattern: clusterPrefix + "/actions/replication/bootstrap/{topology}", protected: true, grant: GrantClusterReplicationBootstrap, action: true, params: []argSpec{pDryRun}, handler: s.handleReplicationBootstrap},
		{pattern: clusterPrefix + "/settings/actions/reload", protected: true, grant: GrantClusterSettings, action: true, handler: s.handleReload},
		{pattern: clusterPrefix + "/settings/actions/switch/{setting}", protected: true, grant: GrantClusterSettings, action: true, handler: s.handleSwitchSetting},

		// Tenant databases (databases.go): the handlers dispatch on the method.
		{pattern: "/api/databases", protected: true, handler: s.handleAllDatabases},
		{pattern: clusterPrefix + "/databases", protected: true, grant: GrantDBTenants, handler: s.handleDatabases},
		{pattern: clusterPrefix + "/databases/{reference}", protected: true, grant: GrantDBTenants, handler: s.handleDatabase},

		// Protected, per server ({s} is the server id db<crc64>).
		{pattern: serverPrefix + "maintenance", protected: true, grant: GrantDBMaintenance, action: true, handler: s.serverAction(actMaintenanceToggle)},
		{pattern: serverPrefix + "set-maintenance", protected: true, grant: GrantDBMaintenance, action: true, handler: s.serverAction(actMaintenanceOn)},
		{pattern: serverPrefix + "del-maintenance", protected: true, grant: GrantDBMaintenance, action: true, handler: s.serverAction(actMaintenanceOff)},
		{pattern: serverPrefix + "switchover", protected: true, grant: GrantClusterSwitchover, action: true, params: []argSpec{pDryRun}, handler: s.serverAction(actSwitchover)},
		{pattern: serverPrefix + "set-prefered", protected: true, grant: GrantClusterSettings, action: true, handler: s.serverAction(actSetPrefered)},
		{pattern: serverPrefix + "set-ignored", protected: true, grant: GrantClusterSettings, action: true, handler: s.serverAction(actSetIgnored)},
		{pattern: serverPrefix + "set-unrated", protected: true, grant: GrantClusterSettings, action: true, handler: s.serverAction(actSetUnrated)},
		{pattern: serverPrefix + "start", protected: true, grant: GrantDBStart, action: true, handler: s.serverAction(actStart)},
		{pattern: serverPrefix + "stop", protected: true, grant: GrantDBStop, action: true, handler: s.serverAction(actStop)},
		// An extension: stop then start, one job (grant db-stop, the more dangerous half).
		{pattern: serverPrefix + "restart", protected: true, grant: GrantDBStop, action: true, handler: s.serverAction(actRestart)},
		// A replica's replication by hand, as plans of the one action path (cluster/replicacontrol.go).
		{pattern: serverPrefix + "stop-slave", protected: true, grant: GrantDBReplication, action: true, params: []argSpec{pDryRun},
			handler: s.replicaControl(cluster.PlanStopReplica)},
		{pattern: serverPrefix + "start-slave", protected: true, grant: GrantDBReplication, action: true, params: []argSpec{pDryRun},
			handler: s.replicaControl(cluster.PlanStartReplica)},
		{pattern: serverPrefix + "skip-replication-event", protected: true, grant: GrantDBReplication, action: true, params: []argSpec{pDryRun, pForce},
			handler: s.replicaControl(cluster.PlanSkipEvent)},
	}
	rt = append(rt, s.compatImplemented()...) // compat.go: topology/proxies, proxy actions, settings
	rt = append(rt, s.backupRoutes()...)      // backups.go: backups, jobs, backup and reseed actions
	rt = append(rt, s.uiRoutes()...)          // uiroutes.go: stream, history, plans, routing, settings view
	rt = append(rt, s.inspectRoutes()...)     // inspect.go: one server's detail, processlist, variables, status...
	rt = append(rt, s.slowLogRoutes()...)     // serverlogs.go: slow-queries, digest-statements-slow, errorlog
	if n := s.opt.Nodes; n != nil {
		// Agent endpoints: outside the user authentication; the handlers check the
		// partition's credential themselves (orchestrator/slapos, docs/slapos.md).
		for _, a := range n.NodeActions() {
			a := a
			rt = append(rt, route{pattern: clusterPrefix + "/servers/{host}/{port}/" + a, plain: true,
				handler: func(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
					n.Node(w, r, param(r, "c"), param(r, "host"), param(r, "port"), a)
				}})
		}
		for _, a := range n.ClusterActions() {
			a := a
			rt = append(rt, route{pattern: clusterPrefix + "/" + a, plain: true,
				handler: func(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
					n.ClusterAction(w, r, param(r, "c"), a)
				}})
		}
	}
	return rt
}

// wrap applies authentication, cluster resolution and the ACL to one route.
func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{}
		if rctx := chi.RouteContext(r.Context()); rctx != nil {
			for _, k := range rctx.URLParams.Keys {
				if e := validPathValue(k, param(r, k)); e != nil {
					writeInputError(w, e)
					return
				}
			}
		}
		if !rt.protected {
			rt.handler(w, r, rc)
			return
		}
		user, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		rc.user = user
		st := s.settings()
		if strings.Contains(rt.pattern, "{c}") && !strings.HasPrefix(rt.pattern, "/api/clusters/actions/") {
			name := param(r, "c")
			m, ok := s.opt.Fleet.Get(name)
			if !ok {
				http.Error(w, "Cluster Not Found", http.StatusNotFound)
				return
			}
			rc.member = m
			st = &m.Config.Settings
		}
		if rt.grant != "" && !hasGrant(st, user, rt.grant) {
			http.Error(w, "No valid ACL", http.StatusForbidden)
			return
		}
		if rt.action {
			in, e := readInput(w, r, rt.params)
			if e != nil {
				writeInputError(w, e)
				return
			}
			rc.in = in
		}
		rt.handler(w, r, rc)
	}
}

// param returns a path variable, percent-decoded: chi matches on the raw path when the
// request's path was sent encoded, so "%5B2001%3Adb8%3A%3A1%5D" and "[2001:db8::1]" both
// reach handlers as "[2001:db8::1]".
func param(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// recoverer turns a panic into a 500 and a log line (never the panic value, which might
// hold request data).
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.WithField("path", r.URL.Path).Errorf("panic in API handler: %v\n%s", v, debug.Stack())
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// cors answers cross-origin requests. Without api-cors-allow-origins (the default) no CORS
// header is ever sent, so a page of another site cannot read any answer (the original sent
// Access-Control-Allow-Origin: * everywhere). With it, a request whose Origin is one of the
// listed origins (compared without case, a trailing '/' ignored) gets that origin echoed,
// the allowed headers and methods; every answer then carries Vary: Origin. OPTIONS
// (preflight) is answered here with 204 and never reaches a handler.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		allowed := s.allowedOrigins()
		if len(allowed) > 0 {
			h.Add("Vary", "Origin")
			if o := r.Header.Get("Origin"); o != "" && originAllowed(allowed, o) {
				h.Set("Access-Control-Allow-Origin", o)
				h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, HEAD, OPTIONS")
				h.Set("Access-Control-Max-Age", "600")
			}
		}
		if r.Method == http.MethodOptions {
			h.Set("Allow", "GET, POST, PUT, DELETE, HEAD, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// corsOrigins is api-cors-allow-origins parsed, for one value of the setting.
type corsOrigins struct {
	from string
	list []string
}

func (s *Server) allowedOrigins() []string {
	v := s.settings().APICORSAllowOrigins
	if c := s.origins.Load(); c != nil && c.from == v {
		return c.list
	}
	c := &corsOrigins{from: v}
	for _, o := range strings.Split(v, ",") {
		if o = normOrigin(o); o != "" {
			c.list = append(c.list, o)
		}
	}
	s.origins.Store(c)
	return c.list
}

func normOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

func originAllowed(allowed []string, origin string) bool {
	o := normOrigin(origin)
	for _, a := range allowed {
		if a == o {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "Encoding error", http.StatusInternalServerError)
		return
	}
	writeRawJSON(w, code, b)
}

// writeRawJSON writes an encoded body and a newline in one write, with its length (no
// chunked encoding).
func writeRawJSON(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte("\n"))
}

// clusterMutex serialises the actions of one cluster (failover, bootstrap, settings...).
func (s *Server) clusterMutex(name string) chan struct{} {
	v, _ := s.actionMu.LoadOrStore(strings.ToLower(name), make(chan struct{}, 1))
	return v.(chan struct{})
}

// exclusive starts a cluster action: the action timeout and the cluster's action lock. It
// answers 409 and returns false when another action holds the lock; call done when finished.
func (s *Server) exclusive(w http.ResponseWriter, r *http.Request, rc *reqCtx) (context.Context, func(), bool) {
	ctx, cancel := actionContext(r, actionTimeout)
	unlock, ok := s.lockCluster(ctx, rc.member.Name)
	if !ok {
		cancel()
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return nil, nil, false
	}
	return ctx, func() { unlock(); cancel() }, true
}

// lockCluster takes the cluster's action lock, or gives up when ctx ends.
func (s *Server) lockCluster(ctx context.Context, name string) (func(), bool) {
	ch := s.clusterMutex(name)
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, true
	case <-ctx.Done():
		return nil, false
	}
}

// settingsOf returns a member's settings.
func settingsOf(m *cluster.Member) *config.Settings { return &m.Config.Settings }
