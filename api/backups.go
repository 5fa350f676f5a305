package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"replication-manager-pro/ipv6"
)

// Grants of the backup routes (replication-manager's names).
const (
	GrantDBBackup = "db-backup"
	GrantDBReseed = "db-reseed"
)

// BackupControl is what the backup routes need: cmd wires each cluster's backup service.
type BackupControl interface {
	// Backups lists a cluster's stored backups, newest first.
	Backups(cluster string) (any, error)
	// Jobs lists a cluster's jobs (of one server when server is not empty), newest first.
	Jobs(cluster, server string) (any, error)
	// ServerJob queues a job on a server: backup-physical, backup-logical,
	// reseed-physicalbackup, reseed-logicalbackup, optimize, backup-error-log,
	// backup-slowquery-log. It returns the queued job.
	ServerJob(cluster string, server ipv6.HostPort, action string, force bool) (any, error)
	// CancelJobs cancels the queued or running jobs of a server whose kind (or the
	// original's task name) is in tasks, and returns their ids; ErrUnknownJob names a task
	// it does not know.
	CancelJobs(cluster string, server ipv6.HostPort, tasks []string) ([]int64, error)
}

// ErrUnknownJob is returned by ServerJob for an action it does not know.
var ErrUnknownJob = errors.New("unknown job")

// backupActions are the server actions that queue a job, with their grant.
var backupActions = map[string]string{
	"backup-physical": GrantDBBackup, "backup-logical": GrantDBBackup,
	"reseed-physicalbackup": GrantDBReseed, "reseed-logicalbackup": GrantDBReseed, "optimize": GrantDBBackup,
	"backup-error-log": GrantDBBackup, "backup-slowquery-log": GrantDBBackup,
}

// backupRoutes are the routes of backups and jobs (docs/backup.md).
func (s *Server) backupRoutes() []route {
	rt := []route{
		{pattern: clusterPrefix + "/backups", protected: true, handler: s.handleBackups},
		{pattern: clusterPrefix + "/jobs", protected: true, handler: s.handleJobs},
		{pattern: clusterPrefix + "/servers/{s}/jobs", protected: true, handler: s.handleJobs},
	}
	rt = append(rt,
		// The newer original's names: reseed/{method}, reseed-cancel, job-cancel/{task}.
		route{pattern: serverPrefix + "reseed/{method}", protected: true, grant: GrantDBReseed, action: true, params: []argSpec{pForce},
			handler: s.handleReseedMethod},
		route{pattern: serverPrefix + "reseed-cancel", protected: true, grant: GrantDBReseed, action: true,
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
				s.handleCancelJobs(w, r, rc, []string{"reseed-physicalbackup", "reseed-logicalbackup"})
			}},
		route{pattern: serverPrefix + "job-cancel/{task}", protected: true, grant: GrantDBBackup, action: true,
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
				s.handleCancelJobs(w, r, rc, []string{param(r, "task")})
			}},
	)
	for a, g := range backupActions {
		a := a
		rt = append(rt, route{pattern: serverPrefix + a, protected: true, grant: g, action: true, params: []argSpec{pForce},
			handler: func(w http.ResponseWriter, r *http.Request, rc *reqCtx) { s.handleServerJob(w, r, rc, a) }})
	}
	return rt
}

func (s *Server) handleBackups(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if s.opt.Backups == nil {
		http.Error(w, "backups are not available", http.StatusNotImplemented)
		return
	}
	l, err := s.opt.Backups.Backups(rc.member.Name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if s.opt.Backups == nil {
		http.Error(w, "jobs are not available", http.StatusNotImplemented)
		return
	}
	server := ""
	if id := param(r, "s"); id != "" {
		addr, ok := s.serverByID(rc.member, id)
		if !ok {
			http.Error(w, "Server Not Found", http.StatusNotFound)
			return
		}
		server = addr.String()
	}
	l, err := s.opt.Backups.Jobs(rc.member.Name, server)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// jobTarget resolves {s} for a job route: 501 without jobs, 404 for an unknown server.
func (s *Server) jobTarget(w http.ResponseWriter, r *http.Request, rc *reqCtx) (ipv6.HostPort, bool) {
	if s.opt.Backups == nil {
		http.Error(w, "jobs are not available", http.StatusNotImplemented)
		return ipv6.HostPort{}, false
	}
	addr, ok := s.serverByID(rc.member, param(r, "s"))
	if !ok {
		http.Error(w, "Server Not Found", http.StatusNotFound)
	}
	return addr, ok
}

func (s *Server) handleServerJob(w http.ResponseWriter, r *http.Request, rc *reqCtx, action string) {
	addr, ok := s.jobTarget(w, r, rc)
	if !ok {
		return
	}
	force := rc.in.bool(pForce.name)
	j, err := s.opt.Backups.ServerJob(rc.member.Name, addr, action, force)
	if err != nil {
		status := http.StatusConflict
		if errors.Is(err, ErrUnknownJob) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// reseedMethods maps the original's reseed/{method} names (newer and older releases) to the
// job actions. Its logicalmaster (a dump streamed from the master) has no equivalent: our
// reseeds take the newest stored backup of the kind, or a donor's stream when there is none.
var reseedMethods = map[string]string{
	"logicalbackup": "reseed-logicalbackup", "mysqldump": "reseed-logicalbackup",
	"physicalbackup": "reseed-physicalbackup", "mariabackup": "reseed-physicalbackup", "xtrabackup": "reseed-physicalbackup",
}

func (s *Server) handleReseedMethod(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	method := param(r, "method")
	action, ok := reseedMethods[method]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(
			"reseed method %q is not supported: use logicalbackup or physicalbackup (mysqldump, mariabackup and xtrabackup are accepted as their old names)", method)})
		return
	}
	s.handleServerJob(w, r, rc, action)
}

// handleCancelJobs cancels a server's queued or running jobs of the tasks: 200 with their
// ids, 404 when none was queued or running, 400 for an unknown task.
func (s *Server) handleCancelJobs(w http.ResponseWriter, r *http.Request, rc *reqCtx, tasks []string) {
	addr, ok := s.jobTarget(w, r, rc)
	if !ok {
		return
	}
	ids, err := s.opt.Backups.CancelJobs(rc.member.Name, addr, tasks)
	switch {
	case errors.Is(err, ErrUnknownJob):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	case len(ids) == 0:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no %s job queued or running on %s", strings.Join(tasks, " or "), addr)})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"canceled": ids})
	}
}
