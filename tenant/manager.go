package tenant

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/mariadb"
)

// Spec is a validated request for one tenant database.
type Spec struct {
	Reference  string
	Password   string // "" generates one at creation; used at creation only
	Charset    string // a Charsets value, "" for DefaultCharset; used at creation only
	RequireSSL bool
}

// Request is a request as received (API body, SlapOS shared instance parameters), before
// validation. RequireSSL nil means true.
type Request struct {
	Reference  string
	Password   string
	Charset    string
	RequireSSL *bool
}

// FieldError is a refused request: the field and why. Nothing was changed.
type FieldError struct {
	Reference string // the reference concerned, when known
	Field     string // reference, db_password, db_charset, require_ssl, ...
	Msg       string
}

func (e *FieldError) Error() string {
	if e.Reference != "" && e.Field != "reference" {
		return fmt.Sprintf("%s: %s: %s", e.Reference, e.Field, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// ConflictError: the names a reference derives are held by something the manager does not
// own (a database or account of the same name, or another reference's tracking row).
// Nothing was changed.
type ConflictError struct{ Reference, Msg string }

func (e *ConflictError) Error() string { return e.Reference + ": " + e.Msg }

// ErrNotFound: no tenant database of that reference.
var ErrNotFound = errors.New("no tenant database of that reference")

// Validate checks a request and returns its Spec. The reference is quoted only when it is
// made of the allowed characters; other input is never echoed (a password never).
func (r Request) Validate() (Spec, error) {
	if err := ValidateReference(r.Reference); err != nil {
		return Spec{}, &FieldError{Field: "reference", Msg: err.Error()}
	}
	if err := ValidatePassword(r.Password); err != nil {
		return Spec{}, &FieldError{Reference: r.Reference, Field: "db_password", Msg: err.Error()}
	}
	if _, _, err := CharsetOf(r.Charset); err != nil {
		return Spec{}, &FieldError{Reference: r.Reference, Field: "db_charset", Msg: err.Error()}
	}
	s := Spec{Reference: r.Reference, Password: r.Password, Charset: r.Charset, RequireSSL: true}
	if r.RequireSSL != nil {
		s.RequireSSL = *r.RequireSSL
	}
	return s, nil
}

// ValidateAll validates a full desired list: every entry valid, no reference twice.
func ValidateAll(rs []Request) ([]Spec, error) {
	out := make([]Spec, 0, len(rs))
	seen := map[string]bool{}
	for i, r := range rs {
		s, err := r.Validate()
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Field = fmt.Sprintf("databases[%d].%s", i, fe.Field)
			}
			return nil, err
		}
		if seen[s.Reference] {
			return nil, &FieldError{Field: fmt.Sprintf("databases[%d].reference", i), Msg: fmt.Sprintf("%q is listed twice", s.Reference)}
		}
		seen[s.Reference] = true
		out = append(out, s)
	}
	return out, nil
}

// Tenant is one tenant database as the manager reports it.
type Tenant struct {
	Reference  string    `json:"reference"`
	Database   string    `json:"database"`
	User       string    `json:"user"`
	Charset    string    `json:"charset"`
	Collation  string    `json:"collation,omitempty"`
	RequireSSL bool      `json:"require_ssl"`
	State      string    `json:"state"`
	Created    time.Time `json:"created"`
	Published  Published `json:"published"`
	// Error tells why the published password is missing (sealed with another key).
	Error string `json:"error,omitempty"`
}

// ProxyUsers keeps the tenant accounts of one proxy.
type ProxyUsers interface {
	Name() string
	// Sync makes the proxy's tenant users exactly want; users named in remove are deleted
	// too (they may have been copied without the tenant marker).
	Sync(ctx context.Context, want []ProxyUser, remove []string) (changed int, err error)
}

// ProxyUser is one tenant account in a proxy.
type ProxyUser struct {
	User         string
	PasswordHash string
	RequireSSL   bool
}

// Manager manages the tenant databases of one cluster for the duration of a request. The
// caller serialises managers of one cluster (the API holds the cluster's action lock).
type Manager struct {
	Cluster string
	Master  *mariadb.Server
	// Servers are the cluster's other reachable servers: a removed tenant's sessions are
	// ended there too (its accounts and database go away by replication).
	Servers   []*mariadb.Server
	Proxies   []ProxyUsers
	Endpoints Endpoints
	Sealer    *Sealer
	// ReservedUsers are the cluster's own accounts (db-servers-credential,
	// replication-credential, ...): a reference deriving one of them is refused.
	ReservedUsers []string
	Log           *logrus.Entry
}

// Result tells what a change did.
type Result struct {
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Removed   []string `json:"removed"`
	Unchanged []string `json:"unchanged"`
	// ProxyErrors: the databases are in place but these proxies could not be updated (a
	// later call retries).
	ProxyErrors []string `json:"proxy_errors,omitempty"`
}

// Changed reports whether anything was created, updated or removed.
func (r *Result) Changed() bool { return len(r.Created)+len(r.Updated)+len(r.Removed) > 0 }

func (m *Manager) log() *logrus.Entry {
	if m.Log != nil {
		return m.Log
	}
	return logrus.NewEntry(logrus.StandardLogger()).WithField("cluster", m.Cluster)
}

// List returns the tenant databases with their published parameters, sorted by reference.
func (m *Manager) List(ctx context.Context) ([]Tenant, error) {
	rows, err := m.Master.TenantRows(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Tenant, 0, len(rows))
	for _, r := range rows {
		out = append(out, m.tenantOf(r))
	}
	return out, nil
}

// Get returns one tenant database.
func (m *Manager) Get(ctx context.Context, ref string) (Tenant, error) {
	rows, err := m.Master.TenantRows(ctx)
	if err != nil {
		return Tenant{}, err
	}
	for _, r := range rows {
		if r.Reference == ref {
			return m.tenantOf(r), nil
		}
	}
	return Tenant{}, ErrNotFound
}

func (m *Manager) tenantOf(r mariadb.TenantRow) Tenant {
	t := Tenant{Reference: r.Reference, Database: r.Database, User: r.User, Charset: r.Charset, Collation: r.Collation,
		RequireSSL: r.RequireSSL, State: string(r.State), Created: r.Created}
	n := Names{Database: r.Database, User: r.User}
	pw, err := m.Sealer.Open(m.Cluster, r.Reference, r.Secret)
	if err != nil {
		t.Error = err.Error()
		t.Published = Publish(m.Cluster, n, "", r.RequireSSL, m.Endpoints)
		t.Published.URL, t.Published.URLv4 = "", ""
		return t
	}
	t.Published = Publish(m.Cluster, n, pw, r.RequireSSL, m.Endpoints)
	return t
}

// Add creates the tenant database of spec unless it exists (then only require_ssl is
// brought in line: password and charset are set at creation only).
func (m *Manager) Add(ctx context.Context, spec Spec) (*Result, error) {
	if err := m.Master.EnsureTenantTable(ctx); err != nil {
		return nil, err
	}
	st, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if err := m.checkNew(st, []Spec{spec}); err != nil {
		return nil, err
	}
	if err := m.apply(ctx, st, spec, res); err != nil {
		return res, err
	}
	m.syncProxies(ctx, res, nil)
	return res, nil
}

// Remove drops a tenant: its sessions ended, its accounts dropped (which revokes their
// privileges), its database dropped, its tracking row deleted, its proxy users removed.
func (m *Manager) Remove(ctx context.Context, ref string) (*Result, error) {
	rows, err := m.Master.TenantRows(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Reference == ref {
			res := &Result{}
			if err := m.drop(ctx, r); err != nil {
				return res, err
			}
			res.Removed = append(res.Removed, ref)
			m.syncProxies(ctx, res, []string{r.User})
			return res, nil
		}
	}
	return nil, ErrNotFound
}

// Converge makes the cluster's tenant databases exactly specs, as SlapOS reconciles its
// shared instances: the missing ones created, those no longer listed removed, the others
// left as they are (require_ssl brought in line). Every entry is checked before anything is
// changed: a refused list changes nothing. A repeated call writes nothing at all.
func (m *Manager) Converge(ctx context.Context, specs []Spec) (*Result, error) {
	if err := m.Master.EnsureTenantTable(ctx); err != nil {
		return nil, err
	}
	st, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, s := range specs {
		wanted[s.Reference] = true
	}
	var drop []mariadb.TenantRow
	for _, r := range st.rows {
		if !wanted[r.Reference] {
			drop = append(drop, r)
		}
	}
	// Names freed by the removals may be taken by this call's new references.
	for _, r := range drop {
		delete(st.byRef, r.Reference)
		delete(st.dbs, r.Database)
		delete(st.users, r.User)
		delete(st.rowDB, r.Database)
		delete(st.rowUser, r.User)
	}
	if err := m.checkNew(st, specs); err != nil {
		return nil, err
	}
	res := &Result{}
	var removedUsers []string
	for _, r := range drop {
		if err := m.drop(ctx, r); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, r.Reference)
		removedUsers = append(removedUsers, r.User)
	}
	for _, s := range specs {
		if err := m.apply(ctx, st, s, res); err != nil {
			return res, err
		}
	}
	if res.Changed() {
		m.syncProxies(ctx, res, removedUsers)
	} else {
		// Nothing changed here; the proxies may still lag (one was down last time).
		m.syncProxies(ctx, res, nil)
	}
	return res, nil
}

// SyncProxies brings every proxy's tenant users in line with the tracking rows.
func (m *Manager) SyncProxies(ctx context.Context) (*Result, error) {
	res := &Result{}
	m.syncProxies(ctx, res, nil)
	return res, nil
}

// state is what the master holds: tracking rows, schemas and account names.
type state struct {
	rows    []mariadb.TenantRow
	byRef   map[string]mariadb.TenantRow
	dbs     map[string]bool
	users   map[string]bool
	rowDB   map[string]string // database -> reference of its row
	rowUser map[string]string // user -> reference of its row
}

func (m *Manager) state(ctx context.Context) (*state, error) {
	rows, err := m.Master.TenantRows(ctx)
	if err != nil {
		return nil, err
	}
	dbs, err := m.Master.Databases(ctx)
	if err != nil {
		return nil, err
	}
	users, err := m.Master.AccountUsers(ctx)
	if err != nil {
		return nil, err
	}
	st := &state{rows: rows, byRef: map[string]mariadb.TenantRow{}, dbs: dbs, users: users,
		rowDB: map[string]string{}, rowUser: map[string]string{}}
	for _, r := range rows {
		st.byRef[r.Reference] = r
		st.rowDB[r.Database] = r.Reference
		st.rowUser[r.User] = r.Reference
	}
	return st, nil
}

// checkNew refuses, before anything changes, the references to create whose names are
// reserved or held by something else.
func (m *Manager) checkNew(st *state, specs []Spec) error {
	reserved := map[string]bool{}
	for _, u := range m.ReservedUsers {
		reserved[strings.ToLower(u)] = true
	}
	taken := map[string]string{}
	for _, s := range specs {
		if r, ok := st.byRef[s.Reference]; ok && r.State != mariadb.TenantDropping {
			continue
		}
		n := NamesFor(s.Reference)
		if reserved[n.User] {
			return &FieldError{Reference: s.Reference, Field: "reference", Msg: fmt.Sprintf("%q: its user name %s is one of the cluster's own accounts", s.Reference, n.User)}
		}
		for _, name := range []string{"db:" + n.Database, "user:" + n.User} {
			if other, ok := taken[name]; ok {
				return &ConflictError{Reference: s.Reference, Msg: fmt.Sprintf("%s %s is also derived from %s", kindOf(name), nameOf(name), other)}
			}
			taken[name] = s.Reference
		}
		if ref, ok := st.rowDB[n.Database]; ok && ref != s.Reference {
			return &ConflictError{Reference: s.Reference, Msg: fmt.Sprintf("database %s belongs to tenant %s", n.Database, ref)}
		}
		if ref, ok := st.rowUser[n.User]; ok && ref != s.Reference {
			return &ConflictError{Reference: s.Reference, Msg: fmt.Sprintf("user %s belongs to tenant %s", n.User, ref)}
		}
		_, own := st.byRef[s.Reference] // a row being dropped: its names are ours
		if st.dbs[n.Database] && !own {
			return &ConflictError{Reference: s.Reference, Msg: fmt.Sprintf("a database %s exists that the manager did not create", n.Database)}
		}
		if st.users[n.User] && !own {
			return &ConflictError{Reference: s.Reference, Msg: fmt.Sprintf("an account %s exists that the manager did not create", n.User)}
		}
	}
	return nil
}

func kindOf(s string) string {
	k, _, _ := strings.Cut(s, ":")
	return map[string]string{"db": "database", "user": "user"}[k]
}
func nameOf(s string) string { _, n, _ := strings.Cut(s, ":"); return n }

// apply creates one tenant or completes it.
func (m *Manager) apply(ctx context.Context, st *state, s Spec, res *Result) error {
	row, exists := st.byRef[s.Reference]
	if exists && row.State == mariadb.TenantDropping {
		if err := m.drop(ctx, row); err != nil {
			return err
		}
		exists = false
	}
	if exists && row.State == mariadb.TenantReady {
		if row.RequireSSL == s.RequireSSL {
			res.Unchanged = append(res.Unchanged, s.Reference)
			return nil
		}
		if err := m.Master.SetTenantRequireSSL(ctx, row.User, s.RequireSSL); err != nil {
			return err
		}
		if err := m.Master.UpdateTenantRow(ctx, row.Reference, mariadb.TenantReady, s.RequireSSL); err != nil {
			return err
		}
		row.RequireSSL = s.RequireSSL
		st.byRef[s.Reference] = row
		res.Updated = append(res.Updated, s.Reference)
		m.log().WithFields(logrus.Fields{"tenant": s.Reference, "require_ssl": s.RequireSSL}).Info("tenant database: require_ssl changed")
		return nil
	}
	var password string
	if exists { // creating: complete with the stored password
		p, err := m.Sealer.Open(m.Cluster, row.Reference, row.Secret)
		if err != nil {
			return fmt.Errorf("tenant %s: complete its creation: %w", row.Reference, err)
		}
		password = p
	} else {
		password = s.Password
		if password == "" {
			p, err := GeneratePassword()
			if err != nil {
				return err
			}
			password = p
		}
		charset, collation, _ := CharsetOf(s.Charset)
		n := NamesFor(s.Reference)
		sealed, err := m.Sealer.Seal(m.Cluster, s.Reference, password)
		if err != nil {
			return err
		}
		row = mariadb.TenantRow{Reference: s.Reference, Database: n.Database, User: n.User, Charset: charset, Collation: collation,
			RequireSSL: s.RequireSSL, State: mariadb.TenantCreating, Secret: sealed}
		if err := m.Master.InsertTenantRow(ctx, row); err != nil {
			if errors.Is(err, mariadb.ErrTenantRowExists) {
				return &ConflictError{Reference: s.Reference, Msg: "another tenant holds its names (written meanwhile?)"}
			}
			return err
		}
	}
	err := m.Master.CreateTenant(ctx, mariadb.TenantAccount{Database: row.Database, User: row.User,
		PasswordHash: mariadb.NativePasswordHash(password), Charset: row.Charset, Collation: row.Collation, RequireSSL: row.RequireSSL})
	if err != nil {
		return err
	}
	if err := m.Master.UpdateTenantRow(ctx, row.Reference, mariadb.TenantReady, row.RequireSSL); err != nil {
		return err
	}
	row.State = mariadb.TenantReady
	st.byRef[row.Reference] = row
	res.Created = append(res.Created, row.Reference)
	m.log().WithFields(logrus.Fields{"tenant": row.Reference, "database": row.Database, "user": row.User}).Info("tenant database created")
	return nil
}

// drop removes one tenant; every step can be repeated.
func (m *Manager) drop(ctx context.Context, r mariadb.TenantRow) error {
	if r.State != mariadb.TenantDropping {
		if err := m.Master.UpdateTenantRow(ctx, r.Reference, mariadb.TenantDropping, r.RequireSSL); err != nil {
			return err
		}
	}
	if err := m.Master.DropTenant(ctx, r.Database, r.User); err != nil {
		return err
	}
	// Sessions opened before the accounts were dropped keep running: end them everywhere.
	for _, s := range append([]*mariadb.Server{m.Master}, m.Servers...) {
		if err := endSessions(ctx, s, r.User); err != nil {
			m.log().WithFields(logrus.Fields{"tenant": r.Reference, "server": s.Addr().String()}).Warnf("tenant database removed; its sessions could not be ended: %v", err)
		}
	}
	if err := m.Master.DeleteTenantRow(ctx, r.Reference); err != nil {
		return err
	}
	m.log().WithFields(logrus.Fields{"tenant": r.Reference, "database": r.Database, "user": r.User}).Info("tenant database removed")
	return nil
}

func endSessions(ctx context.Context, s *mariadb.Server, user string) error {
	threads, err := s.Processlist(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range threads {
		if t.User != user {
			continue
		}
		if err := s.KillThread(ctx, t.ID); err != nil && !errors.Is(err, mariadb.ErrNoSuchThread) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncProxies makes every proxy's tenant users those of the ready tracking rows. Errors
// are reported in res (the databases are in place; a later call retries).
func (m *Manager) syncProxies(ctx context.Context, res *Result, remove []string) {
	if len(m.Proxies) == 0 {
		return
	}
	rows, err := m.Master.TenantRows(ctx)
	if err != nil {
		res.ProxyErrors = append(res.ProxyErrors, err.Error())
		return
	}
	var want []ProxyUser
	for _, r := range rows {
		if r.State != mariadb.TenantReady {
			continue
		}
		pw, err := m.Sealer.Open(m.Cluster, r.Reference, r.Secret)
		if err != nil {
			res.ProxyErrors = append(res.ProxyErrors, fmt.Sprintf("tenant %s: %v", r.Reference, err))
			continue
		}
		want = append(want, ProxyUser{User: r.User, PasswordHash: mariadb.NativePasswordHash(pw), RequireSSL: r.RequireSSL})
	}
	for _, p := range m.Proxies {
		n, err := p.Sync(ctx, want, remove)
		if err != nil {
			res.ProxyErrors = append(res.ProxyErrors, err.Error()) // names the proxy
			m.log().WithField("router", p.Name()).Warnf("tenant users not synced: %v", err)
			continue
		}
		if n > 0 {
			m.log().WithFields(logrus.Fields{"router": p.Name(), "rows": n}).Info("tenant users synced")
		}
	}
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// GeneratePassword returns 20 random characters of letters and digits (about 115 bits),
// safe in a URL without encoding.
func GeneratePassword() (string, error) {
	b := make([]byte, 20)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = passwordAlphabet[n.Int64()]
	}
	return string(b), nil
}
