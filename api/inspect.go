package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/cluster"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/slowlog"
	"replication-manager-pro/topology"
)

// Server inspection (docs/api.md "Server inspection"): read-only views of one server,
// /api/clusters/{c}/servers/{s}[/processlist|variables|status|master-status|
// all-slaves-status|schemas|tables], with the original's grants. The detail comes from the
// monitor's snapshot; the others ask the server live, through a short-lived connection
// with the cluster's credential (Options.Inspect), never through the monitor's own
// connections, which the monitoring tick and the failover need.

// Grants of the inspection routes (replication-manager's names).
const (
	GrantDBShowProcess   = "db-show-process"
	GrantDBShowVariables = "db-show-variables"
	GrantDBShowStatus    = "db-show-status"
	GrantDBShowSchema    = "db-show-schema"
)

// ServerReader is what the inspection routes read of one server; *mariadb.Server is one.
type ServerReader interface {
	Processlist(ctx context.Context) ([]mariadb.Thread, error)
	GlobalVariables(ctx context.Context) ([]mariadb.Variable, error)
	GlobalStatus(ctx context.Context) ([]mariadb.Variable, error)
	MasterStatus(ctx context.Context) (mariadb.MasterStatus, error)
	AllSlavesStatus(ctx context.Context) ([]mariadb.Replication, error)
	Schemas(ctx context.Context) ([]mariadb.Schema, error)
	Tables(ctx context.Context, limit int) ([]mariadb.Table, error)
	SlowLogInfo(ctx context.Context) (mariadb.SlowLogInfo, error)
	SlowLogTable(ctx context.Context, limit int) ([]slowlog.Entry, error)
	ErrorLogFile(ctx context.Context) (string, error)
	InnoDBStatus(ctx context.Context) (string, error)
	Close() error
}

// InspectOpener opens a ServerReader to one configured server of a cluster; it must not
// block on the network (the first read connects, under the request's deadline).
type InspectOpener func(m *cluster.Member, addr ipv6.HostPort) (ServerReader, error)

// OpenServerReader is the daemon's InspectOpener (and New's default): a short-lived pool
// to the server with the cluster's db-servers-credential (cluster.OpenServer).
func OpenServerReader(m *cluster.Member, addr ipv6.HostPort) (ServerReader, error) {
	s, err := cluster.OpenServer(&m.Config, addr)
	if err != nil {
		return nil, err // not a nil *mariadb.Server inside a non-nil interface
	}
	return s, nil
}

// inspectTimeout bounds one inspection request: connect plus the statement. A frozen
// server costs the caller this much at most.
const inspectTimeout = 10 * time.Second

// maxTables bounds the tables route's answer: the biggest tables first.
const maxTables = 5000

// inspectRoutes are the server inspection routes.
func (s *Server) inspectRoutes() []route {
	p := clusterPrefix + "/servers/{s}"
	read := func(f func(context.Context, ServerReader) (any, error)) func(http.ResponseWriter, *http.Request, *reqCtx) {
		return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) { s.readServer(w, r, rc, f) }
	}
	return []route{
		{pattern: p, protected: true, handler: s.handleServer},
		{pattern: p + "/processlist", protected: true, grant: GrantDBShowProcess, handler: read(readProcesslist)},
		{pattern: p + "/variables", protected: true, grant: GrantDBShowVariables, handler: read(func(ctx context.Context, sr ServerReader) (any, error) {
			return variablesJSON(sr.GlobalVariables(ctx))
		})},
		{pattern: p + "/status", protected: true, grant: GrantDBShowStatus, handler: read(func(ctx context.Context, sr ServerReader) (any, error) {
			return variablesJSON(sr.GlobalStatus(ctx))
		})},
		{pattern: p + "/master-status", protected: true, grant: GrantDBShowStatus, handler: read(readMasterStatus)},
		{pattern: p + "/all-slaves-status", protected: true, grant: GrantDBShowStatus, handler: read(readAllSlavesStatus)},
		{pattern: p + "/schemas", protected: true, grant: GrantDBShowSchema, handler: read(readSchemas)},
		{pattern: p + "/tables", protected: true, grant: GrantDBShowSchema, handler: read(readTables)},
		// The latest deadlock's statements are in it: redacted like the processlist.
		{pattern: p + "/status-innodb", protected: true, grant: GrantDBShowStatus, handler: read(func(ctx context.Context, sr ServerReader) (any, error) {
			text, err := sr.InnoDBStatus(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]string{"status": mariadb.RedactSQL(text)}, nil
		})},
	}
}

// inspectError is the JSON body of a refused or failed inspection.
type inspectError struct {
	Error  string `json:"error"`
	Server string `json:"server,omitempty"`
}

// handleServer answers one server's object, as topology/servers shows it.
func (s *Server) handleServer(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	addr, ok := s.inspectTarget(w, r, rc)
	if !ok {
		return
	}
	srv, found := rc.member.Monitor.Snapshot().Find(addr)
	if !found { // configured but not probed yet (the first tick has not ended)
		srv = &topology.Server{Addr: addr, ID: topology.ServerIDFor(addr)}
	}
	writeJSON(w, http.StatusOK, serverObject(rc.member, srv))
}

// inspectTarget resolves {s}; it answers 404 naming it when the cluster has no such server.
func (s *Server) inspectTarget(w http.ResponseWriter, r *http.Request, rc *reqCtx) (ipv6.HostPort, bool) {
	id := param(r, "s")
	addr, ok := s.serverByID(rc.member, id)
	if !ok {
		writeJSON(w, http.StatusNotFound, inspectError{Error: fmt.Sprintf("server %q not found in cluster %s", id, rc.member.Name)})
	}
	return addr, ok
}

// readServer runs one read against the server {s}: 404 unknown server, 503 server
// unreachable, 502 the server refused the statement (a privilege the
// monitoring user lacks), each naming the server.
func (s *Server) readServer(w http.ResponseWriter, r *http.Request, rc *reqCtx, read func(context.Context, ServerReader) (any, error)) {
	s.withServer(w, r, rc, func(ctx context.Context, addr ipv6.HostPort, sr ServerReader) {
		v, err := read(ctx, sr)
		if err != nil {
			s.inspectFailed(w, r, rc, addr, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// withServer resolves {s} (404 naming it when unknown), opens a reader to it (failures
// answered by inspectFailed) and runs f under the inspection deadline.
func (s *Server) withServer(w http.ResponseWriter, r *http.Request, rc *reqCtx, f func(context.Context, ipv6.HostPort, ServerReader)) {
	addr, ok := s.inspectTarget(w, r, rc)
	if !ok {
		return
	}
	sr, err := s.opt.Inspect(rc.member, addr)
	if err != nil {
		s.inspectFailed(w, r, rc, addr, err)
		return
	}
	defer sr.Close()
	ctx, cancel := context.WithTimeout(r.Context(), inspectTimeout)
	defer cancel()
	f(ctx, addr, sr)
}

func (s *Server) inspectFailed(w http.ResponseWriter, r *http.Request, rc *reqCtx, addr ipv6.HostPort, err error) {
	code, msg := http.StatusServiceUnavailable, "server "+addr.String()+" is unreachable: "+err.Error()
	var me *mysql.MySQLError
	if errors.As(err, &me) && !mariadb.IsAccessDenied(err) {
		code, msg = http.StatusBadGateway, "server "+addr.String()+" refused: "+err.Error()
	}
	s.log.WithFields(map[string]any{"cluster": rc.member.Name, "server": addr.String(), "path": r.URL.Path}).
		WithError(err).Warn("server inspection failed")
	writeJSON(w, code, inspectError{Error: msg, Server: addr.String()})
}
