package api

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

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
// "database-hearbeat" (sic) is what the SlapOS scripts send.
var switchAliases = map[string]string{
	"database-heartbeat": "test-inject-traffic",
	"database-hearbeat":  "test-inject-traffic",
}

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
	w.WriteHeader(http.StatusOK)
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// handleAddCluster creates a cluster from the [Default] settings and starts monitoring it.
// Names: letters, digits, '_', '.', '-' (the name becomes a directory and a TOML table).
func (s *Server) handleAddCluster(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name := param(r, "c")
	if !clusterName.MatchString(name) {
		http.Error(w, "Invalid cluster name: want letters, digits, '_', '.', '-'", http.StatusBadRequest)
		return
	}
	if _, ok := s.opt.Fleet.Get(name); ok {
		http.Error(w, "Cluster already exists: "+name, http.StatusConflict)
		return
	}
	c := config.Cluster{Name: name, Section: name, Settings: *s.settings()}
	if err := s.opt.Fleet.Start(c); err != nil {
		http.Error(w, "Cluster not added: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", name).WithField("user", rc.user).Info("cluster added through the API")
	w.WriteHeader(http.StatusOK)
}
