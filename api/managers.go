package api

import (
	"context"
	"net/http"
	"time"

	"replication-manager-pro/ha"
)

// managersAnswer is GET /api/managers: this manager and, with several managers sharing
// clusters through etcd, every manager with the clusters it leads and what its lease has left.
type managersAnswer struct {
	HA       bool               `json:"ha"` // false: this manager works alone and leads every cluster
	Self     string             `json:"self,omitempty"`
	Managers []ha.ManagerStatus `json:"managers"`
	// Leaders maps each cluster this manager monitors to the manager leading it as this
	// manager sees it ("" while none leads, e.g. etcd without quorum).
	Leaders map[string]string `json:"leaders"`
}

func (s *Server) handleManagers(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	ans := managersAnswer{Leaders: map[string]string{}, Managers: []ha.ManagerStatus{}}
	for _, m := range s.opt.Fleet.Members() {
		name := ""
		if l := m.Monitor.Leadership(); l != nil {
			name, _ = l.Leader()
		}
		ans.Leaders[m.Name] = name
	}
	if s.opt.HA == nil {
		writeJSON(w, http.StatusOK, ans)
		return
	}
	ans.HA, ans.Self = true, s.opt.HA.Name()
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ms, err := s.opt.HA.Managers(ctx)
	if err != nil {
		http.Error(w, "etcd: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	ans.Managers = ms
	writeJSON(w, http.StatusOK, ans)
}
