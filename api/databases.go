package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"replication-manager-pro/cluster"
	"replication-manager-pro/configurator"
	"replication-manager-pro/tenant"
	"replication-manager-pro/topology"
)

// Tenant databases (docs/tenants.md): the databases tenants request on a cluster, SlapOS'
// shared instances.
//
//	GET    /api/clusters/{c}/databases              the cluster's tenant databases, published parameters included
//	POST   /api/clusters/{c}/databases              create one (reference, db_password, db_charset, require_ssl)
//	PUT    /api/clusters/{c}/databases              converge to the full desired list
//	GET    /api/clusters/{c}/databases/{reference}  one of them
//	DELETE /api/clusters/{c}/databases/{reference}  remove it
//	GET    /api/databases                           every cluster's
//	POST   /api/databases                           create one in the body's cluster-id, else the first cluster
//
// Every one needs the grant db-tenants: the answers carry the tenants' passwords (in the
// URLs). Changes hold the cluster's action lock (waiting at most tenantLockWait) and are
// refused with 409 while a failover or switchover runs, or when another manager leads the
// cluster (package ha).

// GrantDBTenants allows reading and changing a cluster's tenant databases.
const GrantDBTenants = "db-tenants"

// tenantLockWait bounds the wait for the cluster's action lock.
const tenantLockWait = 30 * time.Second

// maxTenants bounds a PUT's list.
const maxTenants = 10000

// tenantBody is one database as requested (JSON or form fields), SlapOS' shared instance
// parameter names.
type tenantBody struct {
	Reference  string `json:"reference"`
	DBPassword string `json:"db_password"`
	DBCharset  string `json:"db_charset"`
	RequireSSL any    `json:"require_ssl"` // boolean, or "true"/"false" as SlapOS passes it
	ClusterID  string `json:"cluster-id"`
}

func (b tenantBody) request(field string) (tenant.Request, *inputError) {
	r := tenant.Request{Reference: b.Reference, Password: b.DBPassword, Charset: b.DBCharset}
	switch v := b.RequireSSL.(type) {
	case nil:
	case bool:
		r.RequireSSL = &v
	case string:
		on, ok := parseBoolWord(v)
		if !ok {
			return r, badField(field+"require_ssl", "want true or false")
		}
		r.RequireSSL = &on
	default:
		return r, badField(field+"require_ssl", "want true or false")
	}
	return r, nil
}

// tenantAnswer is the body of a change.
type tenantAnswer struct {
	Cluster   string          `json:"cluster"`
	Result    *tenant.Result  `json:"result"`
	Database  *tenant.Tenant  `json:"database,omitempty"`
	Databases []tenant.Tenant `json:"databases,omitempty"`
	Error     string          `json:"error,omitempty"`
}

func (s *Server) handleDatabases(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.withTenants(w, r, rc, false, func(ctx context.Context, m *tenant.Manager) {
			l, err := m.List(ctx)
			if err != nil {
				s.tenantError(w, rc, err, nil)
				return
			}
			writeJSON(w, http.StatusOK, l)
		})
	case http.MethodPost:
		b, ierr := readTenantBody(w, r)
		if ierr != nil {
			writeInputError(w, ierr)
			return
		}
		if b.ClusterID != "" && !strings.EqualFold(b.ClusterID, rc.member.Name) {
			if _, ok := s.opt.Fleet.Get(b.ClusterID); ok {
				writeInputError(w, badField("cluster-id", "names cluster %s, the path %s: post to /api/clusters/%s/databases", quoteName(b.ClusterID), rc.member.Name, b.ClusterID))
				return
			}
		}
		s.addTenant(w, r, rc, b)
	case http.MethodPut:
		s.putTenants(w, r, rc)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) handleDatabase(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ref := param(r, "reference")
	if err := tenant.ValidateReference(ref); err != nil {
		writeInputError(w, &inputError{code: http.StatusBadRequest, msg: fmt.Sprintf("invalid reference %s in the path: %v", quoteName(ref), err)})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.withTenants(w, r, rc, false, func(ctx context.Context, m *tenant.Manager) {
			t, err := m.Get(ctx, ref)
			if err != nil {
				s.tenantError(w, rc, err, nil)
				return
			}
			writeJSON(w, http.StatusOK, t)
		})
	case http.MethodDelete:
		s.withTenants(w, r, rc, true, func(ctx context.Context, m *tenant.Manager) {
			res, err := m.Remove(ctx, ref)
			s.tenantChanged(w, rc, res, err, nil, nil)
		})
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// handleAllDatabases serves /api/databases: GET lists every cluster's tenant databases the
// user may read; POST creates one in the cluster its cluster-id names, else in the first
// cluster (by name), as SlapOS places a shared instance.
func (s *Server) handleAllDatabases(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	members := s.opt.Fleet.Members()
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		out := []tenant.Tenant{}
		for _, m := range members {
			if !hasGrant(settingsOf(m), rc.user, GrantDBTenants) {
				continue
			}
			sub := &reqCtx{user: rc.user, member: m}
			err := s.withTenantsQuiet(r, sub, false, func(ctx context.Context, mg *tenant.Manager) error {
				l, err := mg.List(ctx)
				if err != nil {
					return err
				}
				out = append(out, l...)
				return nil
			})
			if err != nil { // that cluster's are left out; its own route tells why
				s.log.WithField("cluster", m.Name).Debugf("tenant databases not listed: %v", err)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodPost:
		b, ierr := readTenantBody(w, r)
		if ierr != nil {
			writeInputError(w, ierr)
			return
		}
		if len(members) == 0 {
			http.Error(w, "Cluster Not Found", http.StatusNotFound)
			return
		}
		var target *cluster.Member
		for _, m := range members {
			if b.ClusterID != "" && strings.EqualFold(m.Name, b.ClusterID) {
				target = m
			}
		}
		if target == nil {
			target = members[0] // SlapOS: an unknown or missing cluster-id means the first cluster
		}
		if !hasGrant(settingsOf(target), rc.user, GrantDBTenants) {
			http.Error(w, "No valid ACL", http.StatusForbidden)
			return
		}
		s.addTenant(w, r, &reqCtx{user: rc.user, member: target}, b)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) addTenant(w http.ResponseWriter, r *http.Request, rc *reqCtx, b tenantBody) {
	req, ierr := b.request("")
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	spec, err := req.Validate()
	if err != nil {
		writeInputError(w, badBody("%v", err))
		return
	}
	s.withTenants(w, r, rc, true, func(ctx context.Context, m *tenant.Manager) {
		res, err := m.Add(ctx, spec)
		var t *tenant.Tenant
		if err == nil {
			if got, gerr := m.Get(ctx, spec.Reference); gerr == nil {
				t = &got
			}
		}
		s.tenantChanged(w, rc, res, err, t, nil)
	})
}

func (s *Server) putTenants(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, ierr := readBody(w, r, maxBodyBytes)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	list, ierr := parseTenantList(r.Header.Get("Content-Type"), body)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	reqs := make([]tenant.Request, 0, len(list))
	for i, b := range list {
		if b.ClusterID != "" && !strings.EqualFold(b.ClusterID, rc.member.Name) {
			if _, ok := s.opt.Fleet.Get(b.ClusterID); ok {
				writeInputError(w, badField(fmt.Sprintf("databases[%d].cluster-id", i), "names cluster %s, the path %s", quoteName(b.ClusterID), rc.member.Name))
				return
			}
		}
		req, ierr := b.request(fmt.Sprintf("databases[%d].", i))
		if ierr != nil {
			writeInputError(w, ierr)
			return
		}
		reqs = append(reqs, req)
	}
	specs, err := tenant.ValidateAll(reqs)
	if err != nil {
		writeInputError(w, badBody("%v", err))
		return
	}
	s.withTenants(w, r, rc, true, func(ctx context.Context, m *tenant.Manager) {
		res, err := m.Converge(ctx, specs)
		var l []tenant.Tenant
		if err == nil {
			l, _ = m.List(ctx)
		}
		s.tenantChanged(w, rc, res, err, nil, l)
	})
}

// tenantChanged answers a change: 200 (201 when a POST created), 502 when the databases
// are in place but a proxy could not be updated, or the error's code.
func (s *Server) tenantChanged(w http.ResponseWriter, rc *reqCtx, res *tenant.Result, err error, t *tenant.Tenant, l []tenant.Tenant) {
	if err != nil {
		s.tenantError(w, rc, err, res)
		return
	}
	log := s.log.WithFields(map[string]any{"cluster": rc.member.Name, "user": rc.user})
	if res.Changed() {
		log.WithFields(map[string]any{"created": res.Created, "updated": res.Updated, "removed": res.Removed}).Info("tenant databases changed through the API")
	}
	a := tenantAnswer{Cluster: rc.member.Name, Result: res, Database: t, Databases: l}
	code := http.StatusOK
	if t != nil && len(res.Created) > 0 {
		code = http.StatusCreated
	}
	if len(res.ProxyErrors) > 0 {
		code = http.StatusBadGateway
		a.Error = "the databases are in place, but proxies could not be updated (a later call retries): " + strings.Join(res.ProxyErrors, "; ")
	}
	writeJSON(w, code, a)
}

func (s *Server) tenantError(w http.ResponseWriter, rc *reqCtx, err error, res *tenant.Result) {
	var fe *tenant.FieldError
	var ce *tenant.ConflictError
	switch {
	case errors.As(err, &fe):
		writeInputError(w, badBody("%v", fe))
	case errors.As(err, &ce):
		http.Error(w, "Conflict: "+ce.Error()+"; nothing was changed", http.StatusConflict)
	case errors.Is(err, tenant.ErrNotFound):
		http.Error(w, "Database Not Found", http.StatusNotFound)
	default:
		s.log.WithField("cluster", rc.member.Name).Warnf("tenant databases: %v", err)
		if res != nil && res.Changed() {
			writeJSON(w, http.StatusInternalServerError, tenantAnswer{Cluster: rc.member.Name, Result: res, Error: err.Error()})
			return
		}
		http.Error(w, "Tenant databases: "+err.Error(), http.StatusInternalServerError)
	}
}

// withTenants builds the cluster's tenant manager on its current master and runs fn; a
// change (write) holds the cluster's action lock and is refused while a failover or
// switchover runs.
func (s *Server) withTenants(w http.ResponseWriter, r *http.Request, rc *reqCtx, write bool, fn func(context.Context, *tenant.Manager)) {
	err := s.withTenantsQuiet(r, rc, write, func(ctx context.Context, m *tenant.Manager) error {
		fn(ctx, m)
		return nil
	})
	if err == nil {
		return
	}
	var he *httpError
	if errors.As(err, &he) {
		http.Error(w, he.msg, he.code)
		return
	}
	s.tenantError(w, rc, err, nil)
}

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func (s *Server) withTenantsQuiet(r *http.Request, rc *reqCtx, write bool, fn func(context.Context, *tenant.Manager) error) error {
	ctx, cancel := actionContext(r, actionTimeout)
	defer cancel()
	m := rc.member
	if write && !m.Monitor.Leading() {
		// Several managers (package ha): the cluster's leader alone changes it.
		e := &cluster.NotLeaderError{Cluster: m.Name}
		if l := m.Monitor.Leadership(); l != nil {
			e.Leader, e.LeaderAddr = l.Leader()
		}
		return &httpError{http.StatusConflict, e.Error()}
	}
	if write {
		lctx, lcancel := context.WithTimeout(ctx, tenantLockWait)
		unlock, ok := s.lockCluster(lctx, m.Name)
		lcancel()
		if !ok {
			return &httpError{http.StatusConflict, "Another action runs on this cluster"}
		}
		defer unlock()
		if m.Monitor.Busy() {
			return &httpError{http.StatusConflict, "A failover or switchover runs on this cluster: retry when it is done"}
		}
	}
	snap := m.Monitor.Snapshot()
	master, ok := snap.MasterServer()
	if !ok || master.State != topology.StateMaster {
		return &httpError{http.StatusServiceUnavailable, "No master: tenant databases need a running master"}
	}
	mgr, closeAll, err := s.tenantManager(m, snap, master, write)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := fn(ctx, mgr); err != nil {
		return err
	}
	return nil
}

// tenantManager opens the connections a tenant manager needs: the master, and for a change
// the other reachable servers and the ProxySQL admin interfaces.
func (s *Server) tenantManager(m *cluster.Member, snap *topology.Snapshot, master *topology.Server, write bool) (*tenant.Manager, func(), error) {
	st := &m.Config.Settings
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	sealer, err := tenant.LoadOrCreateSealer(configurator.WorkingDir(st))
	if err != nil {
		return nil, closeAll, err
	}
	ms, err := cluster.OpenServer(&m.Config, master.Addr)
	if err != nil {
		return nil, closeAll, err
	}
	closers = append(closers, func() { ms.Close() })
	mg := &tenant.Manager{Cluster: m.Name, Master: ms, Sealer: sealer, Endpoints: tenant.EndpointsFromSettings(m.Name, st),
		Log: s.log.WithField("cluster", m.Name)}
	if !write { // a read needs the master only
		return mg, closeAll, nil
	}
	for i := range snap.Servers {
		srv := &snap.Servers[i]
		if i == snap.Master || !srv.Reachable {
			continue
		}
		o, err := cluster.OpenServer(&m.Config, srv.Addr)
		if err != nil {
			continue
		}
		closers = append(closers, func() { o.Close() })
		mg.Servers = append(mg.Servers, o)
	}
	for _, v := range []string{st.DBServersCredential, st.ReplicationCredential} {
		if u, _, ok := strings.Cut(v, ":"); ok {
			mg.ReservedUsers = append(mg.ReservedUsers, u)
		}
	}
	mg.ReservedUsers = append(mg.ReservedUsers, st.ProxySQLUser, "repman_job")
	proxies, closeProxies, err := tenant.ProxySQLUsers(m.Name, st)
	if err != nil {
		closeAll()
		return nil, func() {}, err
	}
	closers = append(closers, closeProxies)
	mg.Proxies = proxies
	return mg, closeAll, nil
}

// readTenantBody reads one database request: a JSON object (the tenantBody fields, unknown
// fields refused) or form fields of the same names.
func readTenantBody(w http.ResponseWriter, r *http.Request) (tenantBody, *inputError) {
	body, ierr := readBody(w, r, maxBodyBytes)
	if ierr != nil {
		return tenantBody{}, ierr
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	if ct == "application/json" || strings.HasSuffix(ct, "+json") || ct == "" && len(trimmed) > 0 && trimmed[0] == '{' {
		var b tenantBody
		if ierr := decodeStrict(body, &b); ierr != nil {
			return b, ierr
		}
		return b, nil
	}
	if ct != "" && ct != "application/x-www-form-urlencoded" {
		return tenantBody{}, &inputError{code: http.StatusUnsupportedMediaType, msg: "unsupported Content-Type " + quoteName(ct) + ": send JSON or form fields"}
	}
	fields, ierr := parseForm(string(body))
	if ierr != nil {
		return tenantBody{}, ierr
	}
	q, ierr := parseForm(r.URL.RawQuery)
	if ierr != nil {
		return tenantBody{}, ierr
	}
	var b tenantBody
	seen := map[string]bool{}
	for _, f := range append(q, fields...) {
		if seen[f.name] {
			return b, badField(f.name, "given twice")
		}
		seen[f.name] = true
		switch f.name {
		case "reference":
			b.Reference = f.value
		case "db_password":
			b.DBPassword = f.value
		case "db_charset":
			b.DBCharset = f.value
		case "require_ssl":
			b.RequireSSL = f.value
		case "cluster-id":
			b.ClusterID = f.value
		default:
			return b, badField(f.name, "unknown field; accepted: reference, db_password, db_charset, require_ssl, cluster-id")
		}
	}
	return b, nil
}

// parseTenantList reads a PUT body: {"databases": [...]} or a bare JSON array.
func parseTenantList(contentType string, body []byte) ([]tenantBody, *inputError) {
	ct, _, _ := mime.ParseMediaType(contentType)
	if ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return nil, &inputError{code: http.StatusUnsupportedMediaType, msg: "unsupported Content-Type " + quoteName(ct) + ": send JSON"}
	}
	trimmed := bytes.TrimSpace(body)
	var list []tenantBody
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if ierr := decodeStrict(body, &list); ierr != nil {
			return nil, ierr
		}
	} else {
		var wrap struct {
			Databases *[]tenantBody `json:"databases"`
		}
		if ierr := decodeStrict(body, &wrap); ierr != nil {
			return nil, ierr
		}
		if wrap.Databases == nil {
			return nil, badField("databases", "missing: send {\"databases\": [...]} with the full desired list ([] removes every database)")
		}
		list = *wrap.Databases
	}
	if len(list) > maxTenants {
		return nil, badField("databases", "%d entries, at most %d", len(list), maxTenants)
	}
	return list, nil
}

// decodeStrict decodes one JSON value: valid UTF-8, unknown fields refused, nothing after it.
func decodeStrict(body []byte, v any) *inputError {
	if !utf8.Valid(body) {
		return badBody("body is not valid UTF-8")
	}
	if ierr := noDuplicateKeys(body); ierr != nil {
		return ierr
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badField(te.Field, "want %s", te.Type)
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return badBody("JSON: %s", msg)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badBody("JSON: data after the value")
	}
	return nil
}

// noDuplicateKeys refuses a JSON document with a name twice in one object (encoding/json
// would keep the last silently: {"reference": "a", "reference": "mysql"}).
func noDuplicateKeys(body []byte) *inputError {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // the decoder reports syntax errors
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return badField(v, "given twice")
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}

// SyncTenantProxies brings the tenant users of every cluster's ProxySQL in line with its
// tracking rows: a ProxySQL restarted on a fresh datadir, or one unreachable during a
// change, gets them back (with use_ssl: the master's account copy writes them without).
// The daemon calls it every minute. A cluster without ProxySQL, without a running master,
// in a failover, or with another action holding its lock is skipped until the next call.
func (s *Server) SyncTenantProxies(ctx context.Context) {
	for _, m := range s.opt.Fleet.Members() {
		if !m.Config.Settings.ProxySQL || m.Monitor.Busy() || !m.Monitor.Leading() {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		unlock, ok := s.lockCluster(lctx, m.Name)
		cancel()
		if !ok {
			continue
		}
		func() {
			defer unlock()
			snap := m.Monitor.Snapshot()
			master, ok := snap.MasterServer()
			if !ok || master.State != topology.StateMaster {
				return
			}
			mg, closeAll, err := s.tenantManager(m, snap, master, true)
			if err != nil {
				s.log.WithField("cluster", m.Name).Debugf("tenant users not synced: %v", err)
				return
			}
			defer closeAll()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if res, _ := mg.SyncProxies(sctx); len(res.ProxyErrors) > 0 {
				s.log.WithField("cluster", m.Name).Debugf("tenant users not synced: %s", strings.Join(res.ProxyErrors, "; "))
			}
		}()
	}
}
