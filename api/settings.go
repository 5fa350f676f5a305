package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
)

// handleReload re-reads the configuration files and restarts the cluster's monitor with its
// freshly read section (2.x semantics, which the SlapOS "add then reload" flow needs).
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if s.opt.LoadConfig == nil {
		http.Error(w, "Reload not available: no configuration file", http.StatusNotImplemented)
		return
	}
	unlock, ok := s.lockCluster(r.Context(), rc.member.Name)
	if !ok {
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return
	}
	defer unlock()
	cfg, err := s.opt.LoadConfig()
	if err != nil {
		http.Error(w, "Configuration not reloaded: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d := cfg.Default
	s.defaults.Store(&d)
	fresh, ok := cfg.Cluster(rc.member.Name)
	if !ok {
		http.Error(w, "Cluster Not Found in the configuration files: "+rc.member.Name, http.StatusInternalServerError)
		return
	}
	c := *fresh
	c.Name = rc.member.Name
	if err := s.opt.Fleet.ReloadKeepingMaintenance(c); err != nil {
		http.Error(w, "Cluster not reloaded: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", c.Name).WithField("user", rc.user).Info("settings reloaded through the API")
	w.WriteHeader(http.StatusOK)
}

// switchAliases maps the API's switch names that are not configuration keys to their key.
var switchAliases = map[string]string{
	"database-heartbeat": "test-inject-traffic",
}

// switchNoOp is the switch name SlapOS's repman-manager.sh sends (misspelt). At the version
// SlapOS pins, replication-manager knew no such setting and answered 200 doing nothing; we
// do the same, so that the heartbeat SlapOS's files turn on (test-inject-traffic = true) is
// not turned off by that call.
const switchNoOp = "database-hearbeat"

// switchKey resolves a switch name to a boolean configuration key ("failover-mode" is
// special: it toggles manual/automatic).
func switchKey(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if k, ok := switchAliases[n]; ok {
		return k, true
	}
	if n == "failover-mode" {
		return n, true
	}
	k, ok := config.Canonical(n)
	if !ok {
		return "", false
	}
	key, _ := config.Lookup(k)
	return k, key.Kind == config.KindBool
}

// handleSwitchSetting toggles a boolean setting and rebuilds the cluster's monitor with it:
// 200; unknown or not boolean: 501 "Setting Not Found", as the original.
func (s *Server) handleSwitchSetting(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if strings.EqualFold(strings.TrimSpace(param(r, "setting")), switchNoOp) {
		s.log.WithField("cluster", rc.member.Name).Debug("switch database-hearbeat (sic): nothing to do, as replication-manager 2.x")
		w.WriteHeader(http.StatusOK)
		return
	}
	key, ok := switchKey(param(r, "setting"))
	if !ok {
		http.Error(w, "Setting Not Found", http.StatusNotImplemented)
		return
	}
	unlock, ok := s.lockCluster(r.Context(), rc.member.Name)
	if !ok {
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return
	}
	defer unlock()
	err := s.opt.Fleet.ReloadWith(rc.member.Name, func(st *config.Settings) error {
		if key == "failover-mode" {
			if st.FailoverMode == "automatic" {
				return st.Set(key, "manual")
			}
			return st.Set(key, "automatic")
		}
		v, ok := st.Get(key)
		b, isBool := v.(bool)
		if !ok || !isBool {
			return errors.New("not a boolean setting")
		}
		return st.Set(key, strconv.FormatBool(!b))
	})
	if err != nil {
		http.Error(w, "Setting not changed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("setting", key).WithField("user", rc.user).Info("setting switched through the API")
	s.persist(rc.member.Name, key)
	w.WriteHeader(http.StatusOK)
}

// persist saves a setting changed through the API when the cluster's
// monitoring-save-config is on (config.SaveSetting). A failure is logged: the change is
// made, it will not survive a restart.
func (s *Server) persist(cluster, key string) {
	m, ok := s.opt.Fleet.Get(cluster)
	if !ok || !m.Config.Settings.MonitoringSaveConfig {
		return
	}
	st := m.Config.Settings
	text, _ := st.Text(key)
	if err := config.SaveSetting(&st, m.Name, key, text); err != nil {
		s.log.WithField("cluster", m.Name).WithField("setting", key).WithError(err).Error("setting not saved (monitoring-save-config)")
	}
}

// handleSetSetting answers settings/actions/set/{setting}/{value}: the value is checked by
// the key's rules (as in the files), the monitor rebuilt with it and, under
// monitoring-save-config, the setting saved. A secret is never taken from a URL (URLs end
// up in logs): 400. A replication-manager key without effect here: 501.
func (s *Server) handleSetSetting(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name, value := param(r, "setting"), param(r, "value")
	key, ok := config.Canonical(name)
	switch {
	case !ok && config.StatusOf(name) == config.StatusNoEffect:
		writeJSON(w, http.StatusNotImplemented, NotImplementedBody{Route: clusterPrefix + "/settings/actions/set/{setting}/{value}",
			Error: "not implemented: " + name + " is a replication-manager key accepted without effect here; it cannot be set through the API"})
		return
	case !ok:
		http.Error(w, "Setting Not Found", http.StatusNotImplemented)
		return
	case config.IsSecret(key):
		http.Error(w, "Setting not changed: "+key+" is a secret and is never taken from a URL; write it in the configuration files", http.StatusBadRequest)
		return
	case key == "include":
		http.Error(w, "Setting not changed: include is only read from [Default] of the main file", http.StatusBadRequest)
		return
	}
	unlock, ok := s.lockCluster(r.Context(), rc.member.Name)
	if !ok {
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return
	}
	defer unlock()
	var bad error
	err := s.opt.Fleet.ReloadWith(rc.member.Name, func(st *config.Settings) error {
		bad = st.Set(key, value)
		return bad
	})
	switch {
	case bad != nil:
		http.Error(w, "Setting not changed: "+bad.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, "Setting not changed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("setting", key).WithField("user", rc.user).Info("setting set through the API")
	s.persist(rc.member.Name, key)
	w.WriteHeader(http.StatusOK)
}

// handleAddCluster creates a cluster from the [Default] settings and starts monitoring it.
// Names: letters, digits, '_', '.', '-' (the name becomes a directory and a TOML table).
// At most monitoring-max-clusters clusters run (409 naming the key beyond).
func (s *Server) handleAddCluster(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name := param(r, "c")
	if err := config.ValidateClusterName(name); err != nil {
		http.Error(w, "Invalid cluster name: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Saved settings go to TOML tables: these names would be read back as [Default] or as
	// another cluster's saved settings.
	if low := strings.ToLower(name); low == "default" || strings.HasPrefix(low, "saved-") {
		http.Error(w, "Invalid cluster name: "+name+" is reserved ([Default] and [saved-*] tables)", http.StatusBadRequest)
		return
	}
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	if _, ok := s.opt.Fleet.Get(name); ok {
		http.Error(w, "Cluster already exists: "+name, http.StatusConflict)
		return
	}
	d := s.settings()
	if limit := d.MonitoringMaxClusters; limit > 0 && len(s.opt.Fleet.Members()) >= limit {
		http.Error(w, fmt.Sprintf("Cluster not added: %d clusters run, the limit set by monitoring-max-clusters; "+
			"delete one (/api/clusters/actions/delete/{cluster}) or raise the limit", limit), http.StatusConflict)
		return
	}
	c := config.Cluster{Name: name, Section: name, Settings: *d}
	if err := s.opt.Fleet.Start(c); err != nil {
		http.Error(w, "Cluster not added: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", name).WithField("user", rc.user).Info("cluster added through the API")
	w.WriteHeader(http.StatusOK)
}

// handleDeleteCluster stops monitoring a cluster and forgets it (its monitor goroutines,
// routers, orchestrator, caches and metric series). Its databases are not touched and its
// configuration files are not changed: a cluster of the files comes back at the next start.
// 404 when unknown; 409 while an action runs on it.
func (s *Server) handleDeleteCluster(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	m, ok := s.opt.Fleet.Get(param(r, "c"))
	if !ok {
		http.Error(w, "Cluster Not Found", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	unlock, ok := s.lockCluster(ctx, m.Name)
	if !ok {
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return
	}
	if m.Monitor.Busy() {
		unlock()
		http.Error(w, "Another action runs on this cluster: retry once it is done", http.StatusConflict)
		return
	}
	s.opt.Fleet.Stop(m.Name)
	unlock()
	s.forgetCluster(m)
	s.log.WithField("cluster", m.Name).WithField("user", rc.user).Info("cluster deleted through the API")
	w.WriteHeader(http.StatusOK)
}

// forgetCluster drops what the API keeps about a cluster that no longer runs.
func (s *Server) forgetCluster(m *cluster.Member) {
	s.cache.Delete(m)
	s.actionMu.Delete(strings.ToLower(m.Name))
	s.metrics.forget(m.Name)
}
