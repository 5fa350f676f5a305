package api

import (
	"errors"
	"net/http"

	"replication-manager-pro/cluster"
)

// handleReplicationCleanup: on every server no replication connection, an empty binary log
// and slave position (plan "cleanup"). 200, 409 while another action runs, or 500
// "Replication cleanup failed: <error>".
func (s *Server) handleReplicationCleanup(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.replicationAction(w, r, rc, cluster.PlanCleanup, "Replication cleanup failed: ")
}

// handleReplicationBootstrap sets up master-slave GTID replication on servers that have
// none (plan "bootstrap"): the master is the first db-servers-prefered-master, else the
// first host.
func (s *Server) handleReplicationBootstrap(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if topo := param(r, "topology"); topo != "master-slave" {
		http.Error(w, "Topology not supported: "+topo+" (only master-slave)", http.StatusNotImplemented)
		return
	}
	s.replicationAction(w, r, rc, cluster.PlanBootstrap, "")
}

// replicationAction runs a bootstrap or cleanup plan with the original's answers: an empty
// 200, or 500 with the reason as text; 409 when another action runs; ?dryRun=true answers
// the plan as JSON.
func (s *Server) replicationAction(w http.ResponseWriter, r *http.Request, rc *reqCtx, kind cluster.PlanKind, prefix string) {
	req := cluster.ActionRequest{Kind: kind, Origin: "api", DryRun: rc.in.bool("dryRun"), Wait: cluster.OperatorWait}
	if req.DryRun {
		s.act(w, r, rc, req)
		return
	}
	ctx, cancel := actionContext(r, actionTimeout)
	defer cancel()
	p, _, err := rc.member.Monitor.Act(ctx, req)
	var busy *cluster.BusyError
	switch {
	case errors.As(err, &busy):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case errors.Is(err, cluster.ErrRefused):
		http.Error(w, prefix+p.Refused, http.StatusInternalServerError)
		return
	case err != nil:
		http.Error(w, prefix+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("user", rc.user).Info("replication " + string(kind) + " through the API")
	w.WriteHeader(http.StatusOK)
}
