package slaposim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// API is a small client of the manager's REST API, as SlapOS' repman-manager.sh uses it
// (login, then Bearer token). The manager's certificate is not verified (SlapOS' scripts
// run curl -k against the root partition's own manager).
type API struct {
	Base           string // https://host:port
	User, Password string

	mu    sync.Mutex
	token string
	http  *http.Client
}

// NewAPI returns a client of the manager at base.
func NewAPI(base, user, password string) *API {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the manager's own self-signed certificate
	return &API{Base: strings.TrimRight(base, "/"), User: user, Password: password, http: &http.Client{Transport: tr}}
}

// Login takes a token.
func (a *API) Login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"username": a.User, "password": a.Password})
	code, b, err := a.raw(ctx, http.MethodPost, "/api/login", body, "", 30*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("login: HTTP %d", code)
	}
	var t struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Token == "" {
		return fmt.Errorf("login: no token in the answer")
	}
	a.mu.Lock()
	a.token = t.Token
	a.mu.Unlock()
	return nil
}

// Do runs a request with the token (logging in first, and again on a 401).
func (a *API) Do(ctx context.Context, method, path string, body []byte, timeout time.Duration) (int, []byte, error) {
	a.mu.Lock()
	tok := a.token
	a.mu.Unlock()
	if tok == "" {
		if err := a.Login(ctx); err != nil {
			return 0, nil, err
		}
		return a.Do(ctx, method, path, body, timeout)
	}
	code, b, err := a.raw(ctx, method, path, body, tok, timeout)
	if err == nil && code == http.StatusUnauthorized {
		if err := a.Login(ctx); err != nil {
			return 0, nil, err
		}
		a.mu.Lock()
		tok = a.token
		a.mu.Unlock()
		return a.raw(ctx, method, path, body, tok, timeout)
	}
	return code, b, err
}

// JSON runs a GET and decodes a 200 answer into v.
func (a *API) JSON(ctx context.Context, path string, v any) error {
	code, b, err := a.Do(ctx, http.MethodGet, path, nil, 30*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, code, firstLine(b))
	}
	return json.Unmarshal(b, v)
}

func (a *API) raw(ctx context.Context, method, path string, body []byte, token string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
