package api

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"replication-manager-pro/config"
)

// Token signing: HS256 with a 256-bit key kept in <monitoring-datadir>/api/jwt.key (0600).
// One process both signs and verifies, so a shared secret is enough (RS256's public key
// buys nothing here), and keeping the key on disk lets tokens survive a restart, unlike
// the original's key generated at each start. Deleting the file revokes every token.
const (
	jwtKeyFile = "jwt.key"
	jwtIssuer  = "replication-manager-pro"
)

type authenticator struct {
	key []byte
	now func() time.Time

	verified  sync.Map // token -> verifiedToken
	verifiedN atomic.Int64
}

// JWTKeyPath returns where the signing key is kept.
func JWTKeyPath(datadir string) string { return filepath.Join(datadir, apiDirName, jwtKeyFile) }

func newAuthenticator(datadir string, now func() time.Time) (*authenticator, error) {
	key, err := loadOrCreateKey(JWTKeyPath(datadir))
	if err != nil {
		return nil, err
	}
	return &authenticator{key: key, now: now}, nil
}

func loadOrCreateKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err == nil && len(key) >= 32 {
			return key, nil
		}
		return nil, fmt.Errorf("api: JWT key %s: not 32+ hex-encoded bytes (delete it to generate a new one)", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api: JWT key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("api: JWT key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("api: JWT key: %w", err)
	}
	if err := writeFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("api: JWT key: %w", err)
	}
	return key, nil
}

// claims carry the user name (sub) only: never the password (the original put the clear
// password in its token).
type claims struct {
	jwt.RegisteredClaims
}

func (a *authenticator) issue(user string, lifetime time.Duration) (string, error) {
	now := a.now()
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c := claims{jwt.RegisteredClaims{
		Issuer:    jwtIssuer,
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		ID:        hex.EncodeToString(jti),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.key)
}

// verify checks a token's signature, algorithm, issuer and lifetime and returns its user.
// Tokens already verified are remembered (signature checked once) until they expire.
func (a *authenticator) verify(token string) (string, error) {
	if v, ok := a.verified.Load(token); ok {
		vt := v.(verifiedToken)
		if a.now().Before(vt.exp) {
			return vt.user, nil
		}
		a.verified.Delete(token)
	}
	user, exp, err := a.parse(token)
	if err != nil {
		return "", err
	}
	if a.verifiedN.Add(1) > maxVerifiedTokens { // bound memory: start over
		a.verified.Clear()
		a.verifiedN.Store(0)
	}
	a.verified.Store(token, verifiedToken{user: user, exp: exp})
	return user, nil
}

const maxVerifiedTokens = 10000

type verifiedToken struct {
	user string
	exp  time.Time
}

func (a *authenticator) parse(token string) (string, time.Time, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(jwtIssuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(a.now))
	if err != nil {
		return "", time.Time{}, err
	}
	if c.Subject == "" {
		return "", time.Time{}, errors.New("token has no user")
	}
	return c.Subject, c.ExpiresAt.Time, nil
}

// userList parses a settings' API users (api-credentials then api-credentials-external).
func userList(st *config.Settings) []config.Credential {
	l, err := st.APIUsers()
	if err != nil {
		return nil
	}
	return l
}

// password returns user's password from [Default]'s api-credentials and
// api-credentials-external, then each running cluster's (first definition wins).
func (s *Server) password(user string) (string, bool) {
	for _, c := range s.defaultUsers() {
		if c.User == user {
			return c.Password, true
		}
	}
	for _, m := range s.opt.Fleet.Members() {
		for _, c := range s.cached(m).users {
			if c.User == user {
				return c.Password, true
			}
		}
	}
	return "", false
}

func (s *Server) defaultUsers() []config.Credential {
	d := s.settings()
	if c := s.defUsers.Load(); c != nil && c.from == d {
		return c.users
	}
	c := &parsedUsers{from: d, users: userList(d)}
	s.defUsers.Store(c)
	return c.users
}

// parsedUsers caches the users of one [Default] settings value.
type parsedUsers struct {
	from  *config.Settings
	users []config.Credential
}

func (s *Server) knownUser(user string) bool {
	_, ok := s.password(user)
	return ok
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleLogin: POST /api/login with JSON {"username","password"} (at most
// maxLoginBodyBytes; unknown fields, trailing data and invalid UTF-8 refused). Failed logins
// are limited by the login guard (loginguard.go); user names are truncated in the log.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, ierr := readBody(w, r, maxLoginBodyBytes)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	var req loginRequest
	if err := decodeLogin(body, &req); err != nil {
		http.Error(w, "Error in request: want a JSON object {\"username\": ..., \"password\": ...}: "+jsonReason(err), http.StatusBadRequest)
		return
	}
	addr := clientAddr(r.RemoteAddr)
	log := s.log.WithField("user", shortName(req.Username)).WithField("client", addr)
	if v := s.guard.check(addr, req.Username); v.blocked {
		if v.first {
			log.WithField("limit", v.limit).WithField("until", v.until.Format(time.RFC3339)).
				Warn("API logins refused after too many failures (logged once per limit)")
		}
		wait := max(int(v.until.Sub(s.opt.Now()).Seconds())+1, 1)
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		http.Error(w, "Too many failed logins, retry later", http.StatusTooManyRequests)
		return
	}
	want, ok := s.password(req.Username)
	// Compare even for unknown users, so timing does not tell which users exist.
	match := subtle.ConstantTimeCompare([]byte(want), []byte(req.Password)) == 1
	if !ok || !match || req.Username == "" {
		s.guard.failed(addr, req.Username)
		log.Warn("API login failed")
		http.Error(w, "Invalid credentials", http.StatusForbidden)
		return
	}
	s.guard.succeeded(addr, req.Username)
	hours := s.settings().APITokenTimeout
	if hours <= 0 {
		hours = 48
	}
	tok, err := s.auth.issue(req.Username, time.Duration(hours)*time.Hour)
	if err != nil {
		http.Error(w, "Error signing token", http.StatusInternalServerError)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, tok)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// decodeLogin decodes a login body strictly: one JSON object of known fields, valid UTF-8.
func decodeLogin(body []byte, req *loginRequest) error {
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}

var (
	errInvalidUTF8  = errors.New("body is not valid UTF-8")
	errTrailingData = errors.New("trailing data after the JSON object")
)

func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want a %s", te.Field, te.Type)
	case errors.As(err, &mbe):
		return "body too large"
	case errors.Is(err, errInvalidUTF8), errors.Is(err, errTrailingData):
		return err.Error()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + quoteName(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)) + "; want username and password"
	}
	return "unreadable body"
}

// authenticate returns the user of the request's bearer token, or writes 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || strings.TrimSpace(tok) == "" {
		http.Error(w, "Unauthorised access to this resource: no bearer token", http.StatusUnauthorized)
		return "", false
	}
	user, err := s.auth.verify(strings.TrimSpace(tok))
	if err != nil {
		http.Error(w, "Unauthorised access to this resource: token is not valid", http.StatusUnauthorized)
		return "", false
	}
	if !s.knownUser(user) {
		http.Error(w, "Unauthorised access to this resource: unknown user", http.StatusUnauthorized)
		return "", false
	}
	return user, true
}

// Grants named by the routes. A user holds a grant when one of its api-credentials-acl-allow
// words is a prefix of the grant's name and none of its api-credentials-acl-discard words is.
const (
	GrantClusterCreate               = "cluster-create"
	GrantClusterDelete               = "cluster-delete"
	GrantClusterFailover             = "cluster-failover"
	GrantClusterSwitchover           = "cluster-switchover"
	GrantClusterResetFailoverControl = "cluster-reset-failover-control"
	GrantClusterReplicationBootstrap = "cluster-replication-bootstrap"
	GrantClusterReplicationCleanup   = "cluster-replication-cleanup"
	GrantClusterSettings             = "cluster-settings"
	GrantDBMaintenance               = "db-maintenance"
	GrantDBStart                     = "db-start"
	GrantDBStop                      = "db-stop"
	GrantGlobalSettings              = "global-settings"
)

// Grants lists every grant name, sorted.
func Grants() []string {
	g := []string{GrantClusterCreate, GrantClusterDelete, GrantClusterFailover, GrantClusterSwitchover, GrantClusterResetFailoverControl,
		GrantClusterReplicationBootstrap, GrantClusterReplicationCleanup, GrantClusterSettings,
		GrantDBBackup, GrantDBMaintenance, GrantDBReseed, GrantDBShowProcess, GrantDBShowSchema, GrantDBShowStatus, GrantDBShowVariables, GrantDBStart, GrantDBStop, GrantDBTenants, GrantGlobalSettings, GrantProvConfig}
	sort.Strings(g)
	return g
}

// aclWords parses "user:word word,user2:word" and returns user's words.
func aclWords(list, user string) []string {
	for _, e := range strings.Split(list, ",") {
		u, words, ok := strings.Cut(strings.TrimSpace(e), ":")
		if ok && u == user {
			return strings.Fields(words)
		}
	}
	return nil
}

// hasGrant tells whether user holds grant under settings st. The user must be one of the
// settings' API users.
func hasGrant(st *config.Settings, user, grant string) bool {
	users, err := st.APIUsers()
	if err != nil {
		return false
	}
	known := false
	for _, u := range users {
		if u.User == user {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	for _, d := range aclWords(st.APICredentialsACLDiscard, user) {
		if strings.HasPrefix(grant, d) {
			return false
		}
	}
	for _, a := range aclWords(st.APICredentialsACLAllow, user) {
		if strings.HasPrefix(grant, a) {
			return true
		}
	}
	return false
}

// apiUser is one entry of a cluster object's apiUsers (no password).
type apiUser struct {
	User   string          `json:"user"`
	Grants map[string]bool `json:"grants"`
}

func apiUsersOf(st *config.Settings) map[string]apiUser {
	out := map[string]apiUser{}
	users, err := st.APIUsers()
	if err != nil {
		return out
	}
	for _, u := range users {
		g := map[string]bool{}
		for _, name := range Grants() {
			g[name] = hasGrant(st, u.User, name)
		}
		out[u.User] = apiUser{User: u.User, Grants: g}
	}
	return out
}
