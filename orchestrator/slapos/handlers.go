package slapos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
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
type BundleSource interface {
	Bundle(ctx context.Context, c *config.Cluster, node orchestrator.Target) ([]byte, error)
}

// BundleFunc adapts a function to BundleSource.
type BundleFunc func(ctx context.Context, c *config.Cluster, node orchestrator.Target) ([]byte, error)

// Bundle implements BundleSource.
func (f BundleFunc) Bundle(ctx context.Context, c *config.Cluster, node orchestrator.Target) ([]byte, error) {
	return f(ctx, c, node)
}

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
		ActionNeedProv, ActionNeedUnprov, ActionNeedConfigChange, ActionConfig}
	ClusterActions = []string{ActionNeedRollingRestart, ActionNeedRollingReprov}
)

// Handlers serve the endpoints SlapOS partitions poll. They are unauthenticated (the SlapOS
// scripts call most of them without a token), except config when the cluster sets
// api-credentials-secure-config: see ConfigRequiresAuth and Authorize.
type Handlers struct {
	Clusters ClusterSource
	Bundles  BundleSource // nil: config answers 404
	// ProxyUp tells whether a proxy runs, for the need-* answers that require a running
	// node; nil counts proxies as running.
	ProxyUp func(cluster string, p orchestrator.Target) bool
	// Authorize checks the request's credentials (the API's JWT check) for config when the
	// cluster sets api-credentials-secure-config. When nil such requests are refused.
	Authorize func(r *http.Request) bool
	Log       logrus.FieldLogger
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

// resolve finds the cluster and the node of a node route, or answers the failure itself.
func (h *Handlers) resolve(w http.ResponseWriter, cluster, host, port string) (Cluster, orchestrator.Target, bool) {
	c, ok := h.Clusters.Cluster(cluster)
	if !ok || c.Orchestrator == nil || c.Config == nil {
		write(w, http.StatusInternalServerError, bodyNoCluster)
		return c, orchestrator.Target{}, false
	}
	addr, err := ParseServer(host, port)
	if err != nil {
		write(w, http.StatusInternalServerError, bodyNoServer)
		return c, orchestrator.Target{}, false
	}
	t, ok := c.Orchestrator.Find(addr)
	if !ok {
		write(w, http.StatusInternalServerError, bodyNoServer)
		return c, orchestrator.Target{}, false
	}
	return c, t, true
}

func (h *Handlers) running(c Cluster, t orchestrator.Target) bool {
	if t.Kind == orchestrator.KindDatabase {
		return orchestrator.DatabaseRunning(c.Snapshot, t.Addr)
	}
	return h.ProxyUp == nil || h.ProxyUp(c.Orchestrator.Cluster(), t)
}

// Node answers GET /api/clusters/{cluster}/servers/{host}/{port}/{action}, action one of
// NodeActions. An unknown action answers 404.
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
	case ActionNeedStart, ActionNeedStop, ActionConfig:
	default:
		if _, ok := needs[action]; !ok {
			write(w, http.StatusNotFound, "404 -Unknown action!")
			return
		}
	}
	c, t, ok := h.resolve(w, cluster, host, port)
	if !ok {
		return
	}
	if action == ActionConfig {
		h.config(w, r, c, t)
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

// ConfigRequiresAuth reports whether the config endpoint of a cluster requires the API's
// authentication (api-credentials-secure-config); false for an unknown cluster.
func (h *Handlers) ConfigRequiresAuth(cluster string) bool {
	c, ok := h.Clusters.Cluster(cluster)
	return ok && c.Config != nil && c.Config.Settings.APICredentialsSecureConfig
}

func (h *Handlers) config(w http.ResponseWriter, r *http.Request, c Cluster, t orchestrator.Target) {
	if c.Config.Settings.APICredentialsSecureConfig && (h.Authorize == nil || !h.Authorize(r)) {
		write(w, http.StatusUnauthorized, "401 -Unauthorized!")
		return
	}
	if h.Bundles == nil {
		write(w, http.StatusNotFound, "404 -No configuration bundle available!")
		return
	}
	b, err := h.Bundles.Bundle(r.Context(), c.Config, t)
	if err != nil {
		h.log().WithFields(logrus.Fields{"cluster": c.Config.Name, "server": t.Addr.String()}).WithError(err).Error("slapos: configuration bundle")
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
	c, ok := h.Clusters.Cluster(cluster)
	if !ok || c.Orchestrator == nil {
		write(w, http.StatusInternalServerError, bodyNoCluster)
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
		mux.HandleFunc("GET /api/clusters/{cluster}/servers/{host}/{port}/"+a, func(w http.ResponseWriter, r *http.Request) {
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
