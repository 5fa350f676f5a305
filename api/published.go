package api

import (
	"encoding/json"
	"net"
	"net/http"

	"replication-manager-pro/config"
	"replication-manager-pro/orchestrator/slapos"
)

// handlePublished answers GET /api/slapos/published: the connection parameters of this
// manager and of each cluster, as `slapos publish` writes them for SlapOS, without the
// API password (the caller is logged in) and without the shared instances (their
// parameters, passwords in the URLs, are under /api/clusters/{c}/databases for users
// granted db-tenants).
func (s *Server) handlePublished(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	cfg := &config.Config{Default: *s.settings()}
	if a, ok := s.APIAddr().(*net.TCPAddr); ok && a != nil {
		cfg.Default.APIPort = a.Port // the port listened on (a 0 in the configuration picks one)
	}
	for _, m := range s.opt.Fleet.Members() {
		cfg.Clusters = append(cfg.Clusters, m.Config)
	}
	p, err := slapos.PublishedFor(cfg, "", false)
	if err != nil {
		http.Error(w, "Encoding error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(p)
}
