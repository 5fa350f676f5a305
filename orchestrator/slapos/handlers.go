package slapos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// Cluster is what the handlers need of one running SlapOS cluster.
type Cluster struct {
	// Orchestrator is the cluster's orchestrator: its nodes and their cookies.
	Orchestrator *Orchestrator
	// Config is the configuration it was built from: api-credentials-secure-config and the
	// bundles.
	Config *config.Cluster
	// Snapshot is the latest snapshot, nil before the first tick.
	Snapshot *topology.Snapshot
}

// ClusterSource finds a running cluster by name (case-insensitive). A cluster whose
// prov-orchestrator is not slapos has no partition agents: the source does not know it.
// The daemon implements it on the fleet and the orchestrator it keeps per cluster.
type ClusterSource interface {
	Cluster(name string) (Cluster, bool)
}

// ClusterSourceFunc adapts a function to ClusterSource.
type ClusterSourceFunc func(name string) (Cluster, bool)

// Cluster implements ClusterSource.
func (f ClusterSourceFunc) Cluster(name string) (Cluster, bool) { return f(name) }

// BundleSource builds a node's configuration bundle: a gzip-compressed tar that the
// partition unpacks (databases: etc/mysql/..., data/.system/...; ProxySQL:
// etc/proxysql/proxysql.cnf and etc/proxysql.cnf). Package configurator implements it.
//
// job is nil for a caller holding the partition's credential: the bundle is complete. A
// non-nil job is an anonymous caller (slapos-legacy-anonymous-routes): a database bundle's
// etc/mysql/dbjob.cnf carries job instead of the db-servers-credential, and a bundle that
// cannot do without the admin credentials (ProxySQL) must be refused with ErrNeedsCredential.
type BundleSource interface {
	Bundle(ctx context.Context, c *config.Cluster, node orchestrator.Target, job *JobLogin) ([]byte, error)
}

// BundleFunc adapts a function to BundleSource.
type BundleFunc func(ctx context.Context, c *config.Cluster, node orchestrator.Target, job *JobLogin) ([]byte, error)

// Bundle implements BundleSource.
func (f BundleFunc) Bundle(ctx context.Context, c *config.Cluster, node orchestrator.Target, job *JobLogin) ([]byte, error) {
	return f(ctx, c, node, job)
}

// JobLogin is the login of a database's job runner in a bundle served anonymously: the
// job account (configurator.JobUser, password JobPassword), never the admin credential.
type JobLogin struct{ User, Password string }

// ErrNeedsCredential is a bundle that is never served without the partition's credential.
var ErrNeedsCredential = errors.New("this bundle holds admin credentials: it is only served with the partition's credential")

// Node actions served under /api/clusters/{cluster}/servers/{host}/{port}/.
const (
	ActionNeedStart        = "need-start"
	ActionNeedStop         = "need-stop"
	ActionNeedRestart      = "need-restart"
	ActionNeedReprov       = "need-reprov"
	ActionNeedProv         = "need-prov"
	ActionNeedUnprov       = "need-unprov"
	ActionNeedConfigChange = "need-config-change"
	ActionConfig           = "config"
)

// Cluster actions served under /api/clusters/{cluster}/.
const (
	ActionNeedRollingRestart = "need-rolling-restart"
	ActionNeedRollingReprov  = "need-rolling-reprov"
)

// NodeActions and ClusterActions return the action lists (the API mounts them one by one).
func (h *Handlers) NodeActions() []string    { return NodeActions }
func (h *Handlers) ClusterActions() []string { return ClusterActions }

// NodeActions and ClusterActions list the actions, for routers mounting them one by one.
var (
	NodeActions = []string{ActionNeedStart, ActionNeedStop, ActionNeedRestart, ActionNeedReprov,
		ActionNeedProv, ActionNeedUnprov, ActionNeedConfigChange, ActionConfig, ActionWatch, ActionReport}
	ClusterActions = []string{ActionNeedRollingRestart, ActionNeedRollingReprov}
)

// Handlers serve the endpoints SlapOS partitions poll. Every request must carry the
// partition credential of its node ("Authorization: Bearer <credential>", see
// PartitionCredential; for the cluster routes, the credential of any node of the cluster).
// The config route also takes a user's API token when Authorize accepts it. When the
// cluster sets slapos-legacy-anonymous-routes, requests without an Authorization header are
// served as replication-manager served them, for SlapOS' unchanged cron scripts, except that
// anonymous bundles carry the job account instead of the admin credential and ProxySQL
// bundles are refused.
type Handlers struct {
	Clusters ClusterSource
	Bundles  BundleSource // nil: config answers 404
	// ProxyUp tells whether a proxy runs, for the need-* answers that require a running
	// node; nil counts proxies as running.
	ProxyUp func(cluster string, p orchestrator.Target) bool
	// Authorize reports whether the request carries the API token of a user allowed to read
	// the cluster's bundles (the API checks the user's grant on the cluster's settings). It is
	// asked for the config route only: user tokens never consume a one-shot request. nil:
	// user tokens are refused.
	Authorize func(r *http.Request, c *config.Cluster) bool
	// Report receives what partition agents report they did (report.go); nil: logged only.
	Report ReportFunc
	Log    logrus.FieldLogger

	keys keyCache
}

// Body texts, as replication-manager writes them: callers match on the leading code.
const (
	bodyNoCluster     = "500 -No cluster!"
	bodyNoServer      = "500 -No valid server!"
	bodyNotValid      = "503 -Not a Valid Server!"
	bodyNeedStart     = "200 -Need start!"
	bodyNoStartNeeded = "500 -No start needed!"
	bodyNeedStop      = "200 -Need stop!"
	bodyNoStopNeeded  = "500 -No stop needed!"
)

// needs maps the 200/503 node actions to their cookie and word.
var needs = map[string]struct {
	cookie  Cookie
	word    string
	needsUp bool // only answered for a running node
	consume bool // the cookie is deleted once answered
}{
	ActionNeedRestart:      {CookieRestart, "restart", true, false},
	ActionNeedReprov:       {CookieReprov, "reprov", true, false},
	ActionNeedProv:         {CookieProv, "prov", true, false},
	ActionNeedUnprov:       {CookieUnprov, "unprov", true, false},
	ActionNeedConfigChange: {CookieConfig, "config change", false, true},
}

func (h *Handlers) log() logrus.FieldLogger {
	if h.Log == nil {
		return logrus.StandardLogger()
	}
	return h.Log
}

func write(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// ParseServer reads the {host}/{port} of a node route: host as an IPv4, a name, or an IPv6
// literal with brackets ("[2001:db8::1]"), percent-encoded ("%5B2001:db8::1%5D") or bare.
func ParseServer(host, port string) (ipv6.HostPort, error) {
	if strings.Contains(host, "%") {
		if u, err := url.PathUnescape(host); err == nil {
			if _, perr := ipv6.ParseHostPort(u, 1); perr == nil {
				host = u
			}
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return ipv6.HostPort{}, fmt.Errorf("port %q is not a number in 1-65535", port)
	}
	hp, err := ipv6.ParseHostPort(host, p)
	if err != nil {
		return ipv6.HostPort{}, err
	}
	if hp.Port != p { // "host:port" smuggled into the host segment
		return ipv6.HostPort{}, fmt.Errorf("host %q names a port", host)
	}
	return hp, nil
}

// access is who called a partition route.
type access int

const (
	accessAnonymous access = iota // no Authorization header, slapos-legacy-anonymous-routes set
	accessPartition               // the node's (or, for a cluster route, a node's) credential
	accessUser                    // a user's API token accepted by Authorize (config only)
)

// Refusals: 401 with a body naming what is missing, and a WWW-Authenticate challenge.
const (
	bodyNeedCredential = "401 -Partition credential required: send this node's credential as " +
		"\"Authorization: Bearer <credential>\" (parameter " + CredentialParameter + " of the partition's request, " +
		"partition-credentials.json of slapos render); the cluster does not set slapos-legacy-anonymous-routes"
	bodyBadCredential  = "401 -Partition credential not valid for this node!"
	bodyUserNotAllowed = "401 -Token not accepted: partition routes take the partition's credential; " +
		"a user's token is only accepted for config, from a user granted cluster-settings on this cluster"
	bodySecureConfig = "401 -Partition credential required: api-credentials-secure-config forbids anonymous bundles"
	bodyProxyAnon    = "401 -Partition credential required: a ProxySQL bundle holds admin credentials and is " +
		"only served anonymously to the proxy's own address"
)

func (h *Handlers) refuse(w http.ResponseWriter, r *http.Request, cluster, server, body string) {
	h.log().WithFields(logrus.Fields{"cluster": cluster, "server": server, "client": r.RemoteAddr,
		"route": r.URL.Path}).Debug("slapos: partition route refused")
	w.Header().Set("WWW-Authenticate", `Bearer realm="replication-manager partition"`)
	write(w, http.StatusUnauthorized, body)
}

// authenticate decides who calls a route of cluster c about nodes (the node of a node route,
// or every database of the cluster for a cluster route; empty for an unknown server) and
// answers the refusals itself. userOK lets a user's token through Authorize.
func (h *Handlers) authenticate(w http.ResponseWriter, r *http.Request, c Cluster, server string,
	nodes []orchestrator.Target, userOK bool) (access, bool) {
	name := c.Orchestrator.Cluster()
	tok, present := bearer(r)
	switch {
	case !present:
		if c.Config.Settings.SlapOSLegacyAnonymousRoutes {
			return accessAnonymous, true
		}
		h.refuse(w, r, name, server, bodyNeedCredential)
		return 0, false
	case looksLikeCredential(tok):
		key, err := h.keys.get(WorkingDir(&c.Config.Settings))
		if err != nil {
			h.log().WithField("cluster", name).WithError(err).Error("slapos: partition key")
			write(w, http.StatusInternalServerError, "500 -Internal error!")
			return 0, false
		}
		ok := false
		for _, n := range nodes { // every comparison runs: no early exit to time
			if credentialMatches(tok, PartitionCredential(key, name, n.Addr)) {
				ok = true
			}
		}
		if ok {
			return accessPartition, true
		}
		h.refuse(w, r, name, server, bodyBadCredential)
		return 0, false
	case userOK && h.Authorize != nil && h.Authorize(r, c.Config):
		return accessUser, true
	}
	h.refuse(w, r, name, server, bodyUserNotAllowed)
	return 0, false
}

// lookup finds the cluster of a route, or answers 500 itself.
func (h *Handlers) lookup(w http.ResponseWriter, cluster string) (Cluster, bool) {
	c, ok := h.Clusters.Cluster(cluster)
	if !ok || c.Orchestrator == nil || c.Config == nil {
		write(w, http.StatusInternalServerError, bodyNoCluster)
		return c, false
	}
	return c, true
}

// resolve finds the cluster and the node of a node route and authenticates the caller, or
// answers the failure itself. An unknown server is only told to an authenticated caller
// (a credential cannot match it, so a credential holder gets 401).
//
// A user's token (Authorize) is accepted for config, and, under legacy routes, for
// need-start and need-stop: SlapOS's database cron script sends the admin's API token.
func (h *Handlers) resolve(w http.ResponseWriter, r *http.Request, cluster, host, port, action string) (Cluster, orchestrator.Target, access, bool) {
	c, ok := h.lookup(w, cluster)
	if !ok {
		return c, orchestrator.Target{}, 0, false
	}
	userOK := action == ActionConfig ||
		c.Config.Settings.SlapOSLegacyAnonymousRoutes && (action == ActionNeedStart || action == ActionNeedStop)
	var nodes []orchestrator.Target
	t, found := orchestrator.Target{}, false
	server := host + ":" + port
	if addr, err := ParseServer(host, port); err == nil {
		server = addr.String()
		if t, found = c.Orchestrator.Find(addr); found {
			nodes = []orchestrator.Target{t}
		}
	}
	who, ok := h.authenticate(w, r, c, server, nodes, userOK)
	if !ok {
		return c, t, 0, false
	}
	if !found {
		write(w, http.StatusInternalServerError, bodyNoServer)
		return c, t, 0, false
	}
	return c, t, who, true
}

func (h *Handlers) running(c Cluster, t orchestrator.Target) bool {
	if t.Kind == orchestrator.KindDatabase {
		return orchestrator.DatabaseRunning(c.Snapshot, t.Addr)
	}
	return h.ProxyUp == nil || h.ProxyUp(c.Orchestrator.Cluster(), t)
}

// Node answers GET /api/clusters/{cluster}/servers/{host}/{port}/{action}, action one of
// NodeActions. An unknown action answers 404. The caller must send the node's credential
// (see Handlers); without it the answer is 401 and nothing is consumed.
//
//   - need-start: 200 "200 -Need start!" once per Start request (the cookie is consumed),
//     else 500 "500 -No start needed!". The node need not run.
//   - need-stop: for a running node, 200 "200 -Need stop!" once per Stop request, else 500
//     "500 -No stop needed!".
//   - need-restart, need-reprov, need-prov, need-unprov (running node), need-config-change
//     (any node, consumed): 200 "200 -Need <word>!" or 503 "503 -No <word> needed!"; a
//     node not running: 503 "503 -Not a Valid Server!". replication-manager answered 200 in
//     every case (the code was only in the body); the body prefixes are kept.
//   - config: the node's bundle (application/gzip).
//
// Unknown cluster: 500 "500 -No cluster!"; unknown server: 500 "500 -No valid server!".
func (h *Handlers) Node(w http.ResponseWriter, r *http.Request, cluster, host, port, action string) {
	switch action {
	case ActionNeedStart, ActionNeedStop, ActionConfig, ActionWatch, ActionReport:
	default:
		if _, ok := needs[action]; !ok {
			write(w, http.StatusNotFound, "404 -Unknown action!")
			return
		}
	}
	c, t, who, ok := h.resolve(w, r, cluster, host, port, action)
	if !ok {
		return
	}
	if action == ActionConfig {
		h.config(w, r, c, t, who)
		return
	}
	if action == ActionWatch || action == ActionReport { // the native agent's routes, never anonymous
		if who != accessPartition {
			h.refuse(w, r, c.Orchestrator.Cluster(), t.Addr.String(), bodyNeedCredential)
			return
		}
		if action == ActionWatch {
			h.watch(w, r, c.Orchestrator.Cluster(), t) // watch.go
		} else {
			h.report(w, r, c.Orchestrator.Cluster(), t) // report.go
		}
		return
	}
	n, err := c.Orchestrator.Node(t.Addr)
	if err != nil {
		h.fail(w, c, t, err)
		return
	}
	switch action {
	case ActionNeedStart:
		taken, err := n.Take(CookieWaitStart)
		if err != nil {
			h.fail(w, c, t, err)
			return
		}
		if taken {
			h.log().WithFields(logrus.Fields{"cluster": c.Orchestrator.Cluster(), "server": t.Addr.String()}).Info("slapos: start handed to the partition")
			write(w, http.StatusOK, bodyNeedStart)
			return
		}
		write(w, http.StatusInternalServerError, bodyNoStartNeeded)
	case ActionNeedStop:
		if !h.running(c, t) {
			write(w, http.StatusInternalServerError, bodyNoStopNeeded)
			return
		}
		taken, err := n.Take(CookieWaitStop)
		if err != nil {
			h.fail(w, c, t, err)
			return
		}
		if taken {
			h.log().WithFields(logrus.Fields{"cluster": c.Orchestrator.Cluster(), "server": t.Addr.String()}).Info("slapos: stop handed to the partition")
			write(w, http.StatusOK, bodyNeedStop)
			return
		}
		write(w, http.StatusInternalServerError, bodyNoStopNeeded)
	default:
		nd := needs[action]
		if nd.needsUp && !h.running(c, t) {
			write(w, http.StatusServiceUnavailable, bodyNotValid)
			return
		}
		set := n.Has(nd.cookie)
		if nd.consume {
			if set, err = n.Take(nd.cookie); err != nil {
				h.fail(w, c, t, err)
				return
			}
		}
		if set {
			write(w, http.StatusOK, "200 -Need "+nd.word+"!")
			return
		}
		write(w, http.StatusServiceUnavailable, "503 -No "+nd.word+" needed!")
	}
}

func (h *Handlers) fail(w http.ResponseWriter, c Cluster, t orchestrator.Target, err error) {
	h.log().WithFields(logrus.Fields{"cluster": c.Orchestrator.Cluster(), "server": t.Addr.String()}).WithError(err).Error("slapos: cookie")
	write(w, http.StatusInternalServerError, "500 -Internal error!")
}

func (h *Handlers) config(w http.ResponseWriter, r *http.Request, c Cluster, t orchestrator.Target, who access) {
	server := t.Addr.String()
	var job *JobLogin
	if who == accessAnonymous {
		switch {
		case c.Config.Settings.APICredentialsSecureConfig:
			h.refuse(w, r, c.Orchestrator.Cluster(), server, bodySecureConfig)
			return
		case t.Kind != orchestrator.KindDatabase && fromHost(r, t.Addr.Host):
			// SlapOS's download-proxy-config runs in the ProxySQL's own partition, whose
			// address is the proxy's: the full bundle, to that address only.
			who = accessPartition
		case t.Kind != orchestrator.KindDatabase:
			h.refuse(w, r, c.Orchestrator.Cluster(), server, bodyProxyAnon)
			return
		}
	}
	if who == accessAnonymous {
		key, err := h.keys.get(WorkingDir(&c.Config.Settings))
		if err != nil {
			h.log().WithField("cluster", c.Orchestrator.Cluster()).WithError(err).Error("slapos: partition key")
			write(w, http.StatusInternalServerError, "500 -Internal error!")
			return
		}
		job = &JobLogin{User: configurator.JobUser, Password: JobPassword(key, c.Orchestrator.Cluster())}
	}
	if h.Bundles == nil {
		write(w, http.StatusNotFound, "404 -No configuration bundle available!")
		return
	}
	b, err := h.Bundles.Bundle(r.Context(), c.Config, t, job)
	if errors.Is(err, ErrNeedsCredential) {
		h.refuse(w, r, c.Orchestrator.Cluster(), server, bodyProxyAnon)
		return
	}
	if err != nil {
		h.log().WithFields(logrus.Fields{"cluster": c.Config.Name, "server": server}).WithError(err).Error("slapos: configuration bundle")
		write(w, http.StatusNotFound, "404 -Configuration bundle not available!")
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// ClusterAction answers GET /api/clusters/{cluster}/{action}, action one of ClusterActions:
// 200 "200 -Need rolling restart!" (or reprov) when every database has the restart (reprov)
// cookie, else 503 "503 -No rolling restart needed!"; unknown cluster 500 "500 -No cluster!".
// The caller must send the credential of one of the cluster's databases.
func (h *Handlers) ClusterAction(w http.ResponseWriter, r *http.Request, cluster, action string) {
	var ck Cookie
	var word string
	switch action {
	case ActionNeedRollingRestart:
		ck, word = CookieRestart, "rolling restart"
	case ActionNeedRollingReprov:
		ck, word = CookieReprov, "rolling reprov"
	default:
		write(w, http.StatusNotFound, "404 -Unknown action!")
		return
	}
	c, ok := h.lookup(w, cluster)
	if !ok {
		return
	}
	if _, ok := h.authenticate(w, r, c, "", c.Orchestrator.Placement().Databases, false); !ok {
		return
	}
	all, err := c.Orchestrator.EveryDatabaseHas(ck)
	if err != nil {
		h.log().WithField("cluster", c.Orchestrator.Cluster()).WithError(err).Error("slapos: rolling cookies")
		write(w, http.StatusInternalServerError, "500 -Internal error!")
		return
	}
	if all {
		write(w, http.StatusOK, "200 -Need "+word+"!")
		return
	}
	write(w, http.StatusServiceUnavailable, "503 -No "+word+" needed!")
}

// Register mounts every endpoint on a standard library mux, with method GET (HEAD included):
// /api/clusters/{cluster}/servers/{host}/{port}/<node action> and
// /api/clusters/{cluster}/<cluster action>.
func (h *Handlers) Register(mux *http.ServeMux) {
	for _, a := range NodeActions {
		a := a
		method := "GET "
		if a == ActionReport {
			method = "" // POST; the handler answers 405 to the rest
		}
		mux.HandleFunc(method+"/api/clusters/{cluster}/servers/{host}/{port}/"+a, func(w http.ResponseWriter, r *http.Request) {
			h.Node(w, r, r.PathValue("cluster"), r.PathValue("host"), r.PathValue("port"), a)
		})
	}
	for _, a := range ClusterActions {
		a := a
		mux.HandleFunc("GET /api/clusters/{cluster}/"+a, func(w http.ResponseWriter, r *http.Request) {
			h.ClusterAction(w, r, r.PathValue("cluster"), a)
		})
	}
}

// Handler returns a mux serving only these endpoints (see Register).
func (h *Handlers) Handler() http.Handler {
	mux := http.NewServeMux()
	h.Register(mux)
	return mux
}

// fromHost reports whether the request comes from host (an address of the configuration,
// compared as an address: ipv6.SameHost).
func fromHost(r *http.Request, host string) bool {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	return ipv6.SameHost(ip, host)
}
