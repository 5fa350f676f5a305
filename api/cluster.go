package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// Cluster is the cluster object of GET /api/clusters and /api/clusters/{c}: the fields of
// replication-manager's cluster JSON that this implementation can fill.
type Cluster struct {
	Name                          string             `json:"name"`
	Tenant                        string             `json:"tenant"`
	WorkingDir                    string             `json:"workingDir"`
	DBServers                     []string           `json:"dbServers"`
	DBServersCrashes              []any              `json:"dbServersCrashes"`
	ProxyServers                  []string           `json:"proxyServers"`
	FailoverCounter               int                `json:"failoverCounter"`
	FailoverLastTime              int64              `json:"failoverLastTime"`
	ActivePassiveStatus           string             `json:"activePassiveStatus"`
	IsSplitBrain                  bool               `json:"isSplitBrain"`
	IsFailedArbitrator            bool               `json:"isFailedArbitrator"`
	IsLostMajority                bool               `json:"isLostMajority"`
	IsDown                        bool               `json:"isDown"`
	IsClusterDown                 bool               `json:"isClusterDown"`
	IsAllDBUp                     bool               `json:"isAllDbUp"`
	IsFailable                    bool               `json:"isFailable"`
	IsPostgres                    bool               `json:"isPostgres"`
	IsProvision                   bool               `json:"isProvision"`
	IsNeedProxyRestart            bool               `json:"isNeedProxyRestart"`
	IsNeedProxiesRestart          bool               `json:"isNeedProxiesRestart"`
	IsNeedProxiesConfigChange     bool               `json:"isNeedProxiesConfigChange"`
	IsNeedDatabasesRestart        bool               `json:"isNeedDatabasesRestart"`
	IsNeedDatabasesRollingRestart bool               `json:"isNeedDatabasesRollingRestart"`
	IsNeedDatabasesRollingReprov  bool               `json:"isNeedDatabasesRollingReprov"`
	IsNeedDatabasesReprov         bool               `json:"isNeedDatabasesReprov"`
	IsNeedDatabasesConfigChange   bool               `json:"isNeedDatabasesConfigChange"`
	IsNotMonitoring               bool               `json:"isNotMonitoring"`
	IsAlertDisable                bool               `json:"isAlertDisable"`
	Config                        json.RawMessage    `json:"config"`
	Topology                      string             `json:"topology"`
	MonitorType                   string             `json:"monitorType"`
	Uptime                        string             `json:"uptime"`
	StateMachine                  StateMachine       `json:"stateMachine"`
	APIUsers                      map[string]apiUser `json:"apiUsers"`
	WaitingRejoin                 int                `json:"waitingRejoin"`
	WaitingSwitchover             int                `json:"waitingSwitchover"`
	WaitingFailover               int                `json:"waitingFailover"`
	Master                        string             `json:"master"` // master's server id, "" when none (extension)
	LastTick                      time.Time          `json:"lastTick"`
}

// StateMachine is the cluster object's stateMachine.
type StateMachine struct {
	Discovered      bool `json:"discovered"`
	InFailover      bool `json:"inFailover"`
	InSchemaMonitor bool `json:"inSchemaMonitor"`
}

// memberCache holds what does not change while a member runs (settings are replaced with
// the member on reload): its masked, camelCase config and its API users.
type memberCache struct {
	config   json.RawMessage
	apiUsers map[string]apiUser
	ids      []string
	hosts    []ipv6.HostPort
	users    []config.Credential
	rendered atomic.Pointer[renderedCluster]
}

// renderedCluster is a cluster object encoded once per snapshot (GET /api/clusters is
// polled by UIs and scripts; encoding the config of every cluster on every call costs).
type renderedCluster struct {
	key  renderKey
	json []byte
}

// renderKey holds everything a cluster object is computed from.
type renderKey struct {
	snap        *topology.Snapshot
	count       int
	last        time.Time
	busy        bool
	provisioned bool
}

func (s *Server) cached(m *cluster.Member) *memberCache {
	if v, ok := s.cache.Load(m); ok {
		return v.(*memberCache)
	}
	mc := &memberCache{config: maskedConfig(&m.Config.Settings), apiUsers: apiUsersOf(&m.Config.Settings), users: userList(&m.Config.Settings)}
	mc.hosts, _ = m.Config.Settings.Hosts()
	for _, h := range mc.hosts {
		mc.ids = append(mc.ids, topology.ServerIDFor(h))
	}
	// Forget the caches of members replaced by a reload.
	live := map[*cluster.Member]bool{}
	for _, x := range s.opt.Fleet.Members() {
		live[x] = true
	}
	s.cache.Range(func(k, _ any) bool {
		if !live[k.(*cluster.Member)] {
			s.cache.Delete(k)
		}
		return true
	})
	s.cache.Store(m, mc)
	return mc
}

// maskedConfig renders settings as camelCase keys (db-servers-hosts -> dbServersHosts), as
// the original's cluster JSON, with every secret key's value replaced by "*:*" (even an
// empty one: the reader learns nothing of it).
func maskedConfig(st *config.Settings) json.RawMessage {
	out := make(map[string]any, len(config.Keys()))
	for _, k := range config.Keys() {
		var v any = config.MaskedValue
		if !k.Secret {
			v, _ = st.Get(k.Name)
		}
		out[camel(k.Name)] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

func camel(key string) string {
	parts := strings.Split(key, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// provisioned computes isProvision: always true for the onpremise and local orchestrators,
// else the orchestrator's hook decides (true without one).
func (s *Server) provisioned(m *cluster.Member) bool {
	switch strings.ToLower(m.Config.Settings.ProvOrchestrator) {
	case "onpremise", "local", "":
		return true
	}
	if s.opt.Provisioned == nil {
		return true
	}
	return s.opt.Provisioned(m)
}

// clusterJSON returns the encoded cluster object, re-encoded only when its inputs changed.
func (s *Server) clusterJSON(m *cluster.Member) ([]byte, error) {
	r, err := s.renderCluster(m)
	if err != nil {
		return nil, err
	}
	return r.json, nil
}

func (s *Server) renderCluster(m *cluster.Member) (*renderedCluster, error) {
	mc := s.cached(m)
	h := m.Monitor.History()
	key := renderKey{snap: m.Monitor.Snapshot(), count: h.Count, last: h.Last, busy: m.Monitor.Busy(), provisioned: s.provisioned(m)}
	if r := mc.rendered.Load(); r != nil && r.key == key {
		return r, nil
	}
	b, err := json.Marshal(s.clusterObject(m, key))
	if err != nil {
		return nil, err
	}
	r := &renderedCluster{key: key, json: b}
	mc.rendered.Store(r)
	return r, nil
}

// renderedList is the body of GET /api/clusters (newline-terminated) for one set of
// rendered clusters, with its gzip form made on first demand. Shared: never modified.
type renderedList struct {
	parts    []*renderedCluster
	body     []byte
	gzipOnce sync.Once
	gzipped  []byte
}

func (l *renderedList) gzip() []byte {
	l.gzipOnce.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		zw.Write(l.body)
		if zw.Close() == nil {
			l.gzipped = b.Bytes()
		}
	})
	return l.gzipped
}

func sameParts(a, b []*renderedCluster) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *Server) clusterObject(m *cluster.Member, key renderKey) Cluster {
	mc := s.cached(m)
	st := &m.Config.Settings
	c := Cluster{
		Name: m.Name, WorkingDir: filepath.Join(st.MonitoringDatadir, m.Name),
		DBServers: mc.ids, DBServersCrashes: []any{}, ProxyServers: []string{},
		ActivePassiveStatus: "A", Config: mc.config, APIUsers: mc.apiUsers,
		MonitorType: "database", Topology: string(topology.KindUnknown),
		IsProvision: key.provisioned,
	}
	if c.DBServers == nil {
		c.DBServers = []string{}
	}
	c.FailoverCounter = key.count
	if !key.last.IsZero() {
		c.FailoverLastTime = key.last.Unix()
	}
	snap := key.snap
	if snap == nil {
		return c
	}
	c.Topology = string(snap.Kind)
	c.IsDown, c.IsAllDBUp, c.IsFailable = snap.IsDown, snap.IsAllDBUp, snap.IsFailable
	c.StateMachine.Discovered = true
	c.StateMachine.InFailover = key.busy
	c.LastTick = snap.Time
	for _, p := range snap.Problems {
		switch p.Code {
		case topology.SplitBrain:
			c.IsSplitBrain = true
		case topology.ClusterDown:
			c.IsClusterDown = true
		}
	}
	if ms, ok := snap.MasterServer(); ok {
		c.Master = ms.ID
	}
	return c
}

// handleStatus: GET /api/status (unprotected).
func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	alive := "starting"
	if s.ready.Load() {
		alive = "running"
	}
	writeJSON(w, http.StatusOK, map[string]string{"alive": alive})
}

// handleClusterStatus: GET /api/clusters/{c}/status (unprotected): running when failable.
func (s *Server) handleClusterStatus(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	name := param(r, "c")
	m, ok := s.opt.Fleet.Get(name)
	if !ok {
		http.Error(w, "No cluster found:"+name, http.StatusBadRequest)
		return
	}
	alive := "errors"
	if snap := m.Monitor.Snapshot(); snap != nil && snap.IsFailable {
		alive = "running"
	}
	writeJSON(w, http.StatusOK, map[string]string{"alive": alive})
}

// handleClusters: GET /api/clusters: array of cluster objects sorted by name.
func (s *Server) handleClusters(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	members := s.opt.Fleet.Members()
	parts := make([]*renderedCluster, len(members))
	for i, m := range members {
		r, err := s.renderCluster(m)
		if err != nil {
			http.Error(w, "Encoding error", http.StatusInternalServerError)
			return
		}
		parts[i] = r
	}
	l := s.list.Load()
	if l == nil || !sameParts(l.parts, parts) {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i, r := range parts {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(r.json)
		}
		buf.WriteString("]\n")
		l = &renderedList{parts: parts, body: buf.Bytes()}
		s.list.Store(l)
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if gz := l.gzip(); gz != nil {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Encoding", "gzip")
			h.Set("Vary", "Accept-Encoding")
			h.Set("Content-Length", strconv.Itoa(len(gz)))
			w.WriteHeader(http.StatusOK)
			w.Write(gz)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Vary", "Accept-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(l.body)))
	w.WriteHeader(http.StatusOK)
	w.Write(l.body)
}

func (s *Server) handleCluster(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	b, err := s.clusterJSON(rc.member)
	if err != nil {
		http.Error(w, "Encoding error", http.StatusInternalServerError)
		return
	}
	writeRawJSON(w, http.StatusOK, b)
}

func (s *Server) handleServers(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	snap := rc.member.Monitor.Snapshot()
	out := []DBServer{}
	if snap != nil {
		for i := range snap.Servers {
			out = append(out, serverObject(rc.member, &snap.Servers[i]))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleMaster(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	ms, ok := rc.member.Monitor.Snapshot().MasterServer()
	if !ok {
		http.Error(w, "No master", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, serverObject(rc.member, ms))
}

func (s *Server) handleSlaves(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	snap := rc.member.Monitor.Snapshot()
	out := []DBServer{}
	if snap != nil {
		for i := range snap.Servers {
			if i != snap.Master && snap.Servers[i].IsReplica() {
				out = append(out, serverObject(rc.member, &snap.Servers[i]))
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Alert is one item of topology/alerts.
type Alert struct {
	Number string `json:"number"`
	Desc   string `json:"desc"`
	From   string `json:"from"`
}

// Alerts is topology/alerts: empty lists encode as null, as the original.
type Alerts struct {
	Errors   []Alert `json:"errors"`
	Warnings []Alert `json:"warnings"`
}

func alertsOf(snap *topology.Snapshot) Alerts {
	var a Alerts
	if snap == nil {
		return a
	}
	for _, p := range snap.Problems {
		num := string(p.Code)
		if p.Server != "" {
			num += "@" + p.Server
		}
		it := Alert{Number: num, Desc: p.Message, From: "MON"}
		if p.Severity == topology.SeverityError || cluster.Blocking(p.Code) {
			a.Errors = append(a.Errors, it)
		} else {
			a.Warnings = append(a.Warnings, it)
		}
	}
	sort.Slice(a.Errors, func(i, j int) bool { return a.Errors[i].Number < a.Errors[j].Number })
	sort.Slice(a.Warnings, func(i, j int) bool { return a.Warnings[i].Number < a.Warnings[j].Number })
	return a
}

func (s *Server) handleAlerts(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, alertsOf(rc.member.Monitor.Snapshot()))
}

// handleLogs: the cluster's recent events, oldest first (?n= limits, default 200).
func (s *Server) handleLogs(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	n := rc.in.count("n", 200)
	if s.opt.Events == nil {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	writeJSON(w, http.StatusOK, s.opt.Events.Recent(rc.member.Name, n))
}

// actionContext bounds a synchronous action: it goes on when the client disconnects (a
// half-done failover must not be cut short), but never runs unbounded.
func actionContext(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), d)
}

const actionTimeout = 5 * time.Minute

// ControlResult is the body of failover and switchover answers: the plan and what ran.
type ControlResult struct {
	Plan   cluster.Plan    `json:"plan"`
	Result *cluster.Result `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// writeControl answers an action: 200 with the result; 409 with the reason when refused or
// when another action runs; 500 when a step failed (the original always answered 200).
func writeControl(w http.ResponseWriter, p cluster.Plan, res *cluster.Result, err error) {
	body := ControlResult{Plan: p, Result: res}
	var busy *cluster.BusyError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, body)
	case errors.Is(err, cluster.ErrRefused), errors.As(err, &busy):
		body.Error = err.Error()
		writeJSON(w, http.StatusConflict, body)
	default:
		body.Error = err.Error()
		writeJSON(w, http.StatusInternalServerError, body)
	}
}

func (s *Server) handleFailover(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.act(w, r, rc, cluster.ActionRequest{Kind: cluster.PlanFailover, Force: rc.in.bool("force")})
}

// act runs a topology change through the cluster's one action path and answers with the
// plan and its result: 200, 409 when refused or when another action runs (the body names
// it), 500 when a step failed. ?dryRun=true returns the plan without running it.
func (s *Server) act(w http.ResponseWriter, r *http.Request, rc *reqCtx, req cluster.ActionRequest) {
	ctx, cancel := actionContext(r, actionTimeout)
	defer cancel()
	req.Origin, req.DryRun, req.Wait = "api", rc.in.bool("dryRun"), cluster.OperatorWait
	s.log.WithField("cluster", rc.member.Name).WithField("user", rc.user).WithField("dry_run", req.DryRun).Info(string(req.Kind) + " requested through the API")
	p, res, err := rc.member.Monitor.Act(ctx, req)
	writeControl(w, p, res, err)
}

// masterFailed reports a missing or down master (switchover is then refused with 400).
func masterFailed(snap *topology.Snapshot) bool {
	ms, ok := snap.MasterServer()
	return !ok || ms.State.IsDown()
}

func (s *Server) handleSwitchover(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var target *ipv6.HostPort
	if pm, ok := rc.in["prefmaster"]; ok {
		hp, err := ipv6.ParseHostPort(pm, ipv6.DefaultPort)
		if err != nil || !contains(s.cached(rc.member).hosts, hp) {
			http.Error(w, "prefmaster "+quoteName(pm)+" is not in db-servers-hosts", http.StatusBadRequest)
			return
		}
		target = &hp
	}
	s.switchover(w, r, rc, target)
}

func (s *Server) switchover(w http.ResponseWriter, r *http.Request, rc *reqCtx, target *ipv6.HostPort) {
	if masterFailed(rc.member.Monitor.Snapshot()) {
		http.Error(w, "Master failed", http.StatusBadRequest)
		return
	}
	s.act(w, r, rc, cluster.ActionRequest{Kind: cluster.PlanSwitchover, Target: target})
}

func contains(l []ipv6.HostPort, h ipv6.HostPort) bool {
	for _, x := range l {
		if ipv6.SameAddr(x, h) {
			return true
		}
	}
	return false
}

func (s *Server) handleResetFailoverControl(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	rc.member.Monitor.ResetFailoverControl()
	w.WriteHeader(http.StatusOK)
}

// handleWaitDatabases waits up to monitoring-wait-retry × monitoring-ticker for every
// database to be up: 200, else 503 (the original answered 403, which reads as an ACL
// refusal).
func (s *Server) handleWaitDatabases(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := settingsOf(rc.member)
	tick := st.MonitoringTickerDuration()
	if tick <= 0 {
		tick = 2 * time.Second
	}
	limit := time.Duration(max(st.MonitoringWaitRetry, 1)) * tick
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	start := time.Now()
	poll := min(tick, 200*time.Millisecond)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		// The member may be replaced meanwhile (settings reload): follow it.
		m, ok := s.opt.Fleet.Get(rc.member.Name)
		if !ok {
			http.Error(w, "Cluster Not Found", http.StatusNotFound)
			return
		}
		if snap := m.Monitor.Snapshot(); snap != nil && snap.IsAllDBUp && len(snap.Servers) > 0 && !snap.Time.Before(start) {
			w.WriteHeader(http.StatusOK)
			return
		}
		select {
		case <-ctx.Done():
			http.Error(w, "Connections to databases failure", http.StatusServiceUnavailable)
			return
		case <-t.C:
		}
	}
}

// handleCrashes answers the failovers and switchovers this manager recorded, newest first:
// each with the old and new master, the old master's final position (switchover) and the
// election that chose.
func (s *Server) handleCrashes(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	l, err := rc.member.Monitor.Crashes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, l)
}
