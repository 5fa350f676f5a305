package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Every route of replication-manager's router answers here: implemented, or 501 with a JSON
// body saying it is not (never the router's bare 404 for a route the original has).
//
// OriginalRoutes is the router of the version SlapOS pins (2.x, server/api.go,
// api_cluster.go, api_database.go, api_proxy.go, http.go), with the few routes of the 3.x
// line that repman-compat.md names (jobs, top, set-cron, dropserver, users/add, the global
// settings switches). Patterns use our parameter names: {c} cluster, {s} server id
// (db<crc64>), {host}/{port} a node by address, {p} proxy id, other names as the original.

// OriginalRoute is one route of replication-manager's router.
type OriginalRoute struct {
	Pattern   string
	Protected bool // the original checked a token
}

// OriginalRoutes returns the routes of replication-manager's router, sorted by pattern.
func OriginalRoutes() []OriginalRoute {
	out := make([]OriginalRoute, 0, len(originalUnprotected)+len(originalProtected))
	for _, p := range originalUnprotected {
		out = append(out, OriginalRoute{Pattern: p})
	}
	for _, p := range originalProtected {
		out = append(out, OriginalRoute{Pattern: p, Protected: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

const (
	cp = "/api/clusters/{c}"
	sp = cp + "/servers/{s}"
	hp = cp + "/servers/{host}/{port}"
)

var originalUnprotected = []string{
	"/api/login", "/api/clusters", "/api/prometheus", "/api/status", "/api/timeout",
	"/api/repocomp/current", "/api/monitor", "/api/heartbeat", "/api/configs/grafana",
	"/heartbeat", "/repocomp/current",
	"/clusters/{c}/servers/{host}/master-status", "/clusters/{c}/servers/{host}/slave-status",
	"/clusters/{c}/servers/{host}/{port}/master-status", "/clusters/{c}/servers/{host}/{port}/slave-status",
	"/clusters/{c}/sphinx-indexes", cp + "/sphinx-indexes",
	cp + "/status", cp + "/actions/master-physical-backup",
	cp + "/servers/{host}/is-master", cp + "/servers/{host}/is-slave",
	hp + "/is-master", hp + "/is-slave",
	hp + "/need-restart", hp + "/need-reprov", hp + "/need-prov", hp + "/need-unprov",
	hp + "/need-start", hp + "/need-stop", hp + "/need-config-change",
	cp + "/need-rolling-reprov", cp + "/need-rolling-restart",
	hp + "/config", hp + "/write-log/{task}", hp + "/backup",
}

var originalProtected = []string{
	"/api/monitor/actions/adduser/{user}",
	"/api/clusters/actions/add/{c}", "/api/clusters/actions/delete/{c}",
	"/api/clusters/settings/actions/switch/{setting}", "/api/clusters/settings/actions/set/{setting}/{value}",
	cp, cp + "/settings", cp + "/tags", cp + "/jobs", cp + "/backups", cp + "/certificates", cp + "/queryrules",
	cp + "/top", cp + "/shardclusters", cp + "/shared", cp + "/send-vault-token", cp + "/diffvariables",
	cp + "/settings/actions/reload", cp + "/settings/actions/switch/{setting}",
	cp + "/settings/actions/set/{setting}/{value}", cp + "/settings/actions/set-cron/{setting}/{value}",
	cp + "/settings/actions/add-db-tag/{tag}", cp + "/settings/actions/drop-db-tag/{tag}",
	cp + "/settings/actions/add-proxy-tag/{tag}", cp + "/settings/actions/drop-proxy-tag/{tag}",
	cp + "/settings/actions/discover", cp + "/settings/actions/apply-dynamic-config",
	cp + "/settings/actions/certificates-reload",
	cp + "/actions/reset-failover-control", cp + "/actions/add/{shard}", cp + "/actions/switchover",
	cp + "/actions/failover", cp + "/actions/certificates-rotate", cp + "/actions/reset-sla",
	cp + "/actions/replication/bootstrap/{topology}", cp + "/actions/replication/cleanup",
	cp + "/services/actions/provision", cp + "/services/actions/unprovision",
	cp + "/actions/cancel-rolling-restart", cp + "/actions/cancel-rolling-reprov",
	cp + "/actions/stop-traffic", cp + "/actions/start-traffic", cp + "/actions/optimize",
	cp + "/actions/sysbench", cp + "/actions/waitdatabases",
	cp + "/actions/addserver/{host}/{port}", cp + "/actions/addserver/{host}/{port}/{type}",
	cp + "/actions/dropserver/{host}/{port}", cp + "/actions/dropserver/{host}/{port}/{type}",
	cp + "/actions/rolling", cp + "/actions/rotate-passwords", cp + "/actions/checksum-all-tables",
	cp + "/schema", cp + "/schema/{schema}/{table}/actions/reshard-table",
	cp + "/schema/{schema}/{table}/actions/reshard-table/{clusterList}",
	cp + "/schema/{schema}/{table}/actions/move-table/{shard}",
	cp + "/schema/{schema}/{table}/actions/universal-table",
	cp + "/schema/{schema}/{table}/actions/checksum-table",
	cp + "/graphite-filterlist", cp + "/settings/actions/set-graphite-filterlist/{type}",
	cp + "/settings/actions/reload-graphite-filterlist", cp + "/settings/actions/reset-graphite-filterlist/{template}",
	cp + "/topology/servers", cp + "/topology/master", cp + "/topology/slaves", cp + "/topology/logs",
	cp + "/topology/proxies", cp + "/topology/alerts", cp + "/topology/crashes",
	cp + "/tests/actions/run/all", cp + "/tests/actions/run/{test}", cp + "/users/add",
	sp, sp + "/processlist", sp + "/variables", sp + "/status", sp + "/status-delta", sp + "/errorlog",
	sp + "/slow-queries", sp + "/digest-statements-pfs", sp + "/digest-statements-slow", sp + "/tables",
	sp + "/vtables", sp + "/schemas", sp + "/status-innodb", sp + "/all-slaves-status", sp + "/master-status",
	sp + "/service-opensvc", sp + "/meta-data-locks", sp + "/query-response-time",
	sp + "/actions/start", sp + "/actions/stop", sp + "/actions/maintenance", sp + "/actions/set-maintenance",
	sp + "/actions/del-maintenance", sp + "/actions/switchover", sp + "/actions/set-prefered",
	sp + "/actions/set-unrated", sp + "/actions/set-ignored", sp + "/actions/unprovision", sp + "/actions/provision",
	sp + "/actions/backup-physical", sp + "/actions/backup-logical", sp + "/actions/backup-error-log",
	sp + "/actions/backup-slowquery-log", sp + "/actions/optimize", sp + "/actions/reseed/{method}",
	sp + "/actions/pitr", sp + "/actions/reseed-cancel", sp + "/actions/job-cancel/{task}",
	sp + "/actions/toogle-innodb-monitor", sp + "/actions/wait-innodb-purge",
	sp + "/actions/toogle-slow-query-capture", sp + "/actions/toogle-slow-query-table",
	sp + "/actions/toogle-slow-query", sp + "/actions/toogle-pfs-slow-query",
	sp + "/actions/set-long-query-time/{time}", sp + "/actions/toogle-read-only",
	sp + "/actions/toogle-meta-data-locks", sp + "/actions/toogle-query-response-time",
	sp + "/actions/toogle-sql-error-log", sp + "/actions/reset-master", sp + "/actions/reset-slave-all",
	sp + "/actions/flush-logs", sp + "/actions/reset-pfs-queries", sp + "/actions/start-slave",
	sp + "/actions/stop-slave", sp + "/actions/skip-replication-event", sp + "/actions/run-jobs",
	sp + "/queries/{digest}/actions/kill-thread", sp + "/queries/{digest}/actions/kill-query",
	sp + "/queries/{digest}/actions/explain-pfs", sp + "/queries/{digest}/actions/explain-slowlog",
	sp + "/queries/{digest}/actions/analyze-pfs", sp + "/queries/{digest}/actions/analyze-slowlog",
	cp + "/proxies/{p}/actions/start", cp + "/proxies/{p}/actions/stop",
	cp + "/proxies/{p}/actions/provision", cp + "/proxies/{p}/actions/unprovision",
}

var paramRe = regexp.MustCompile(`\{[^}]*\}`)

// shape is a pattern with its parameter names erased: two patterns of one shape match the
// same paths.
func shape(pattern string) string { return paramRe.ReplaceAllString(pattern, "{}") }

// servedOutsideRoutes are patterns the router serves without a route entry (router()).
var servedOutsideRoutes = []string{"/api/prometheus", "/metrics"}

// compatRoutes returns, for every original route the table rt does not serve, a route
// answering 501 with a JSON body; the original's unprotected routes answer anyone, the
// others need a token first (401 otherwise), as the original.
func (s *Server) compatRoutes(rt []route) []route {
	have := map[string]bool{}
	for _, r := range rt {
		have[shape(r.pattern)] = true
	}
	for _, p := range servedOutsideRoutes {
		have[shape(p)] = true
	}
	var out []route
	for _, o := range OriginalRoutes() {
		if have[shape(o.Pattern)] {
			continue
		}
		have[shape(o.Pattern)] = true
		pattern := o.Pattern
		out = append(out, route{pattern: pattern, protected: o.Protected, plain: !o.Protected,
			handler: func(w http.ResponseWriter, r *http.Request, _ *reqCtx) { notImplemented(w, pattern) }})
	}
	return out
}

// NotImplementedBody is the JSON body of a replication-manager route not implemented here.
type NotImplementedBody struct {
	Error string `json:"error"`
	Route string `json:"route"`
}

func notImplemented(w http.ResponseWriter, pattern string) {
	writeJSON(w, http.StatusNotImplemented, NotImplementedBody{
		Error: "not implemented: replication-manager-pro does not implement this replication-manager route yet (docs/compat.md)",
		Route: pattern,
	})
}

// ImplementedOriginalRoutes reports, for each original route, whether this server's route
// table implements it (false: it answers 501). Node routes of the SlapOS agents count as
// implemented when withNodes is set (the daemon mounts them).
func ImplementedOriginalRoutes(withNodes bool) map[string]bool {
	s := &Server{}
	have := map[string]bool{}
	for _, r := range s.routes() {
		have[shape(r.pattern)] = true
	}
	for _, p := range servedOutsideRoutes {
		have[shape(p)] = true
	}
	if withNodes {
		for _, a := range []string{"need-start", "need-stop", "need-restart", "need-reprov", "need-prov",
			"need-unprov", "need-config-change", "config"} {
			have[shape(hp+"/"+a)] = true
		}
		for _, a := range []string{"need-rolling-restart", "need-rolling-reprov"} {
			have[shape(cp+"/"+a)] = true
		}
	}
	out := map[string]bool{}
	for _, o := range OriginalRoutes() {
		out[o.Pattern] = have[shape(o.Pattern)]
	}
	return out
}

// ProxyControl is what the proxy routes need of the daemon: the proxies of a cluster with
// their state, and their orchestrator actions. nil: those routes answer 501.
type ProxyControl interface {
	Proxies(ctx context.Context, cluster string) ([]Proxy, error)
	// ProxyAction runs start, stop, provision or unprovision on the proxy whose id is id;
	// an unknown id is ErrUnknownProxy.
	ProxyAction(ctx context.Context, cluster, id, action string) error
}

// ErrUnknownProxy is a proxy id that names no proxy of the cluster.
var ErrUnknownProxy = errors.New("Proxy Not Found")

// Proxy is a proxy as replication-manager's topology/proxies lists it (the fields callers
// read; the proxy's password is never part of it).
type Proxy struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Type            string `json:"type"` // proxysql, haproxy
	Host            string `json:"host"`
	HostIPv6        string `json:"hostIPV6"`
	Port            string `json:"port"` // admin (ProxySQL) or API (HAProxy) port, a string as the original
	WritePort       int    `json:"writePort"`
	ReadPort        int    `json:"readPort"`
	ReadWritePort   int    `json:"readWritePort"`
	WriterHostGroup string `json:"writerHostGroup,omitempty"`
	ReaderHostGroup string `json:"readerHostGroup,omitempty"`
	State           string `json:"state"` // ProxyRunning, Failed, Suspect
	PrevState       string `json:"prevState"`
	FailCount       int    `json:"failCount"`
	SlaposDatadir   string `json:"slaposDatadir"`
}

// Grants of the proxy actions, named as replication-manager's ACL names them.
const (
	GrantProxyStart       = "proxy-start"
	GrantProxyStop        = "proxy-stop"
	GrantProvProxyProv    = "prov-proxy-provision"
	GrantProvProxyUnprov  = "prov-proxy-unprovision"
	GrantClusterShowProxy = "cluster-show-proxies"
)

// compatImplemented are the original's routes implemented in this file.
func (s *Server) compatImplemented() []route {
	rt := []route{
		{pattern: clusterPrefix + "/topology/proxies", protected: true, handler: s.handleProxies},
		{pattern: clusterPrefix + "/settings", protected: true, grant: GrantClusterSettings, handler: s.handleSettings},
		{pattern: clusterPrefix + "/settings/actions/set/{setting}/{value}", protected: true, grant: GrantClusterSettings,
			action: true, handler: s.handleSetSetting},
	}
	for action, grant := range map[string]string{"start": GrantProxyStart, "stop": GrantProxyStop,
		"provision": GrantProvProxyProv, "unprovision": GrantProvProxyUnprov} {
		action := action
		rt = append(rt, route{pattern: clusterPrefix + "/proxies/{p}/actions/" + action, protected: true, grant: grant, action: true,
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) { s.handleProxyAction(w, r, rc, action) }})
	}
	sort.Slice(rt, func(i, j int) bool { return rt[i].pattern < rt[j].pattern })
	return rt
}

// handleProxies answers topology/proxies: the cluster's proxies, an empty array when it has
// none.
func (s *Server) handleProxies(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if s.opt.Proxies == nil {
		notImplemented(w, clusterPrefix+"/topology/proxies")
		return
	}
	l, err := s.opt.Proxies.Proxies(r.Context(), rc.member.Name)
	if err != nil {
		http.Error(w, "Proxies not available: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if l == nil {
		l = []Proxy{}
	}
	writeJSON(w, http.StatusOK, l)
}

// handleProxyAction runs a proxy's start, stop, provision or unprovision through its
// cluster's orchestrator: 200 when handed over, 500 "Proxy Not Found" for an unknown id (as
// the original), 500 with the reason otherwise.
func (s *Server) handleProxyAction(w http.ResponseWriter, r *http.Request, rc *reqCtx, action string) {
	if s.opt.Proxies == nil {
		notImplemented(w, clusterPrefix+"/proxies/{p}/actions/"+action)
		return
	}
	ctx, done, ok := s.exclusive(w, r, rc)
	if !ok {
		return
	}
	defer done()
	err := s.opt.Proxies.ProxyAction(ctx, rc.member.Name, param(r, "p"), action)
	switch {
	case errors.Is(err, ErrUnknownProxy):
		http.Error(w, "Proxy Not Found", http.StatusInternalServerError)
		return
	case err != nil:
		http.Error(w, "Proxy "+action+" failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("proxy", param(r, "p")).WithField("user", rc.user).Infof("proxy %s through the API", action)
	w.WriteHeader(http.StatusOK)
}

// handleSettings answers the cluster's settings as JSON, keyed by name, secrets masked
// (the original answered its whole configuration object, camelCase keys; the cluster
// object's config field has that form).
func (s *Server) handleSettings(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, settingsOf(rc.member))
}

// CompatRoutesMarkdown renders, for docs/compat.md, every route of replication-manager's
// router and what answers it here (TestDocsCompatRoutes keeps the document in sync).
func CompatRoutesMarkdown() string {
	impl := ImplementedOriginalRoutes(true)
	var yes, no []string
	for _, o := range OriginalRoutes() {
		auth := "no token"
		if o.Protected {
			auth = "token"
		}
		line := "| `" + o.Pattern + "` | " + auth + " |"
		if impl[o.Pattern] {
			yes = append(yes, line)
		} else {
			no = append(no, line)
		}
	}
	var b strings.Builder
	b.WriteString("Parameters: `{c}` cluster, `{s}` server id (`db<crc64>`), `{host}/{port}` a node by address, `{p}` proxy id, others as named.\n\n")
	b.WriteString("### Implemented (" + strconv.Itoa(len(yes)) + ")\n\n| route | auth in replication-manager |\n|---|---|\n")
	b.WriteString(strings.Join(yes, "\n") + "\n\n")
	b.WriteString("### Not implemented: 501 with a JSON body (" + strconv.Itoa(len(no)) + ")\n\n" +
		"`{\"error\": \"not implemented: ...\", \"route\": \"<pattern>\"}`; the routes the original protected want a valid token first (401 without).\n\n| route | auth in replication-manager |\n|---|---|\n")
	b.WriteString(strings.Join(no, "\n") + "\n")
	return b.String()
}
