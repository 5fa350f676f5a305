// Package api serves replication-manager's REST API (the routes the SlapOS scripts and the
// CLI client call), JWT authentication, TLS, and Prometheus metrics.
//
// Two listeners, as the original: the API listener (api-bind:api-port) always speaks TLS
// and serves every route; the plain HTTP listener (http-bind-address:http-port) serves the
// unprotected routes and the web UI, plus the protected routes when api-https-bind is false.
// See docs/api.md.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/ha"
	"replication-manager-pro/ipv6"
)

// ServiceControl starts and stops database services through an orchestrator (the API's
// server actions start and stop). Without one those actions answer 501.
type ServiceControl interface {
	StartDatabase(ctx context.Context, cluster string, addr ipv6.HostPort) error
	StopDatabase(ctx context.Context, cluster string, addr ipv6.HostPort) error
}

// Options wires the API to the daemon.
type Options struct {
	Fleet  *cluster.Fleet
	Events *eventlog.Log // may be nil: no logs route content, no failover metrics
	// Defaults are the [Default] settings: listeners, TLS files, API users and ACL for the
	// global routes, monitoring-datadir (JWT key, generated certificate), and the settings
	// of clusters created by actions/add.
	Defaults config.Settings
	// LoadConfig re-reads the configuration files (settings reload). nil: reload answers 501.
	LoadConfig func() (*config.Config, error)
	// Provisioned tells whether a cluster's services are provisioned, for orchestrators
	// other than onpremise and local (which are always provisioned). nil: true.
	Provisioned func(m *cluster.Member) bool
	// Backups lists backups and jobs and queues server jobs (backups.go). nil: 501.
	Backups BackupControl
	// Inspect opens a read-only handle to one server for the inspection routes
	// (inspect.go: processlist, variables, status...). nil: OpenServerReader.
	Inspect InspectOpener
	// Services starts and stops databases (server actions start/stop). nil: 501.
	Services ServiceControl
	// Nodes serves the endpoints orchestrator agents poll without a token: need-* and the
	// configuration bundle (the SlapOS orchestrator). nil: not served.
	Nodes NodeHandlers
	// Proxies lists the clusters' proxies and runs their actions (topology/proxies, proxy
	// start/stop/provision/unprovision). nil: those routes answer 501.
	Proxies ProxyControl
	// HA is this manager's membership among several managers sharing clusters through
	// etcd (GET /api/managers, leadership metrics). nil: a lone manager.
	HA  HAStatus
	Log *logrus.Logger
	// Now is the clock of tokens and of the login guard; nil is time.Now.
	Now func() time.Time
}

// HAStatus is what the API shows of the managers sharing clusters (package ha).
type HAStatus interface {
	Managers(ctx context.Context) ([]ha.ManagerStatus, error)
	Changes() int64
	Name() string
}

// NodeHandlers answer the per-node and per-cluster agent endpoints:
// /api/clusters/{c}/servers/{host}/{port}/<node action> and /api/clusters/{c}/<cluster action>.
type NodeHandlers interface {
	NodeActions() []string
	ClusterActions() []string
	Node(w http.ResponseWriter, r *http.Request, cluster, host, port, action string)
	ClusterAction(w http.ResponseWriter, r *http.Request, cluster, action string)
}

// Authorized reports whether the request carries a valid token of a known user, without
// answering it (for handlers that decide themselves, e.g. a protected bundle download).
func (s *Server) Authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return false
	}
	user, err := s.auth.verify(strings.TrimSpace(tok))
	return err == nil && s.knownUser(user)
}

// Server is the API. Create it with New, then Start (or Run) it; its handlers can also be
// used directly (APIHandler, HTTPHandler), e.g. with httptest.
type Server struct {
	opt      Options
	log      *logrus.Entry
	defaults atomic.Pointer[config.Settings]
	defUsers atomic.Pointer[parsedUsers]
	list     atomic.Pointer[renderedList]
	ready    atomic.Bool
	ui       atomic.Pointer[http.Handler]
	origins  atomic.Pointer[corsOrigins]

	auth    *authenticator
	guard   *loginGuard
	metrics *metrics

	apiHandler  http.Handler
	httpHandler http.Handler

	actionMu sync.Map   // cluster name (lower case) -> *sync.Mutex: one action at a time per cluster
	fleetMu  sync.Mutex // clusters added and deleted one at a time (monitoring-max-clusters)
	cache    sync.Map   // *cluster.Member -> *memberCache

	plans   *planTimelines // plan timelines (timeline.go)
	streams streamHub      // live streams (stream.go)
	routing routingCache   // routers' views (routing.go)

	errLogOnce sync.Once
	errLog     *io.PipeWriter

	mu        sync.Mutex
	servers   []*http.Server
	apiAddr   net.Addr
	httpAddr  net.Addr
	apiLn     *limitListener
	httpLn    *limitListener
	serveErrs chan error
}

// New prepares the API: it loads or creates the JWT signing key in monitoring-datadir.
func New(o Options) (*Server, error) {
	if o.Fleet == nil {
		return nil, errors.New("api: no fleet")
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Inspect == nil {
		o.Inspect = OpenServerReader
	}
	s := &Server{opt: o, log: o.Log.WithField("component", "api")}
	d := o.Defaults
	s.defaults.Store(&d)
	a, err := newAuthenticator(d.MonitoringDatadir, o.Now)
	if err != nil {
		return nil, err
	}
	s.auth = a
	s.guard = newLoginGuard(o.Now)
	s.metrics = newMetrics(s)
	s.plans = newPlanTimelines()
	o.Fleet.Observe(s.plans.observe)
	s.apiHandler = s.router(true, true)
	s.httpHandler = s.router(false, !d.APIHTTPSBind)
	return s, nil
}

// SetReady marks the daemon started: /api/status answers "running" from then on.
func (s *Server) SetReady(on bool) { s.ready.Store(on) }

// MountUI serves the web UI at "/" of the plain listener (and of the API listener when
// api-https-bind is true). Until then a placeholder page is served.
func (s *Server) MountUI(h http.Handler) { s.ui.Store(&h) }

// APIHandler is the handler of the TLS API listener: every route and /metrics.
func (s *Server) APIHandler() http.Handler { return s.apiHandler }

// HTTPHandler is the handler of the plain HTTP listener: the unprotected routes and the UI,
// plus the protected routes when api-https-bind is false.
func (s *Server) HTTPHandler() http.Handler { return s.httpHandler }

func (s *Server) settings() *config.Settings { return s.defaults.Load() }

// router builds one listener's routes; protected tells whether the plain listener also
// serves the token-protected routes.
func (s *Server) router(apiListener, protected bool) http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.cors)
	rts := s.routes()
	for _, rt := range append(rts, s.compatRoutes(rts)...) { // compat.go: the original's other routes answer 501
		if !apiListener && !rt.plain && !protected {
			continue
		}
		r.HandleFunc(rt.pattern, s.wrap(rt))
	}
	if apiListener {
		h := s.metrics.handler()
		r.HandleFunc("/metrics", h.ServeHTTP)
		r.HandleFunc("/api/prometheus", h.ServeHTTP)
	}
	uiHere := !apiListener || s.settings().APIHTTPSBind
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		if uiHere && !isAPIPath(req.URL.Path) {
			s.serveUI(w, req)
			return
		}
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
	return r
}

func isAPIPath(p string) bool {
	return p == "/api" || len(p) >= 5 && p[:5] == "/api/"
}

func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	if h := s.ui.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path != "/" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, placeholderPage)
}

const placeholderPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>replication-manager-pro</title></head>
<body><h1>replication-manager-pro</h1>
<p>The web UI is not installed in this build. The REST API is under <code>/api/</code>.</p>
</body></html>
`

// Timeouts of both listeners. Actions such as waitdatabases, failover and switchover run
// synchronously, so the write timeout is long; handlers bound their own work.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	idleTimeout       = 120 * time.Second
	minWriteTimeout   = 10 * time.Minute
)

func (s *Server) writeTimeout() time.Duration {
	d := s.settings()
	w := time.Duration(d.MonitoringWaitRetry)*d.MonitoringTickerDuration() + time.Minute
	return max(w, minWriteTimeout)
}

// Start opens both listeners and serves them in the background until Shutdown. A port 0
// picks a free port (see APIAddr, HTTPAddr). The TLS certificate is read from
// monitoring-ssl-cert/-key or generated once and kept in monitoring-datadir.
func (s *Server) Start() error {
	d := s.settings()
	cert, err := loadOrCreateCertificate(d)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", bindAddr(d.APIBind, d.APIPort))
	if err != nil {
		return fmt.Errorf("api listener %s: %w", bindAddr(d.APIBind, d.APIPort), err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	apiLimited := newLimitListener(apiLn, d.APIMaxConnections)
	apiSrv := s.httpServer(s.apiHandler, apiLimited)
	apiSrv.TLSConfig = tlsCfg
	var httpLn *limitListener
	var httpSrv *http.Server
	if d.HTTPServer {
		ln, err := net.Listen("tcp", bindAddr(d.HTTPBindAddress, d.HTTPPort))
		if err != nil {
			apiLn.Close()
			return fmt.Errorf("http listener %s: %w", bindAddr(d.HTTPBindAddress, d.HTTPPort), err)
		}
		httpLn = newLimitListener(ln, d.APIMaxConnections)
		httpSrv = s.httpServer(s.httpHandler, httpLn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serveErrs = make(chan error, 2)
	s.apiAddr = apiLn.Addr()
	s.apiLn, s.httpLn = apiLimited, httpLn
	s.servers = append(s.servers, apiSrv)
	go func() { s.serveErrs <- apiSrv.Serve(tls.NewListener(apiLimited, tlsCfg)) }()
	s.log.WithField("addr", apiLn.Addr().String()).Info("API listening (TLS)")
	if httpSrv != nil {
		s.httpAddr = httpLn.Addr()
		s.servers = append(s.servers, httpSrv)
		go func() { s.serveErrs <- httpSrv.Serve(httpLn) }()
		s.log.WithField("addr", httpLn.Addr().String()).Info("HTTP listening")
	}
	return nil
}

// httpServer is the server of one listener; its connection states feed the listener's
// limit (api-max-connections).
func (s *Server) httpServer(h http.Handler, ln *limitListener) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnState:         ln.track,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      s.writeTimeout(),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake failures and the like, at debug level: scanners would flood the log.
		ErrorLog: stdlog.New(s.errorLogWriter(), "", 0),
	}
}

func (s *Server) errorLogWriter() io.Writer {
	s.errLogOnce.Do(func() { s.errLog = s.log.WriterLevel(logrus.DebugLevel) })
	return s.errLog
}

// bindAddr joins a bind address and a port; IPv6 literals may come with or without brackets.
func bindAddr(host string, port int) string {
	return net.JoinHostPort(ipv6.Unbracket(host), strconv.Itoa(port))
}

// APIAddr is the API listener's address once started.
func (s *Server) APIAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiAddr
}

// HTTPAddr is the plain listener's address once started (nil when http-server is false).
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpAddr
}

// Shutdown stops the listeners, waiting for running requests until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	s.streams.shutdown() // live streams never end by themselves
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	return errors.Join(errs...)
}

// Run starts the listeners and serves until ctx is done, then shuts down gracefully (at
// most 10 s). A listener that fails while serving ends Run with its error.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErrs:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := s.Shutdown(sctx); err == nil {
		err = serr
	}
	return err
}
