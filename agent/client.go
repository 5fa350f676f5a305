package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/orchestrator/slapos"
)

// maxBundle bounds a downloaded bundle (configurator.Unpack refuses more once unpacked).
const maxBundle = 64 << 20

// errNoWatch is a manager without the watch route (replication-manager itself): the agent
// falls back to polling the need-* routes.
var errNoWatch = errors.New("the manager has no watch route")

// errUnauthorized is a 401: the credential is wrong for this node (or missing).
var errUnauthorized = errors.New("the manager refused the partition credential (401)")

// client talks to the manager's partition routes for one node, with its credential in an
// Authorization header (never in the URL).
type client struct {
	base       string // scheme://host:port, no trailing slash
	cluster    string
	host, port string // the node's address as the routes name it
	credential string
	http       *http.Client
}

func newClient(c Config) (*client, error) {
	u, err := url.Parse(strings.TrimRight(c.Manager, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("manager URL %q: want http://host:port or https://host:port", c.Manager)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 0 // the watch answers late on purpose; each request has its own deadline
	if u.Scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		switch {
		case c.CAFile != "":
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("manager CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("manager CA %s: no PEM certificate", c.CAFile)
			}
			cfg.RootCAs = pool
		case c.Insecure:
			cfg.InsecureSkipVerify = true // as SlapOS' scripts run curl -k
		}
		tr.TLSClientConfig = cfg
	}
	return &client{base: u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), cluster: c.Cluster,
		host: c.Addr.HostBracketed(), port: strconv.Itoa(c.Addr.Port), credential: c.Credential,
		http: &http.Client{Transport: tr}}, nil
}

func (c *client) nodeURL(action string) string {
	return c.base + "/api/clusters/" + url.PathEscape(c.cluster) + "/servers/" + c.host + "/" + c.port + "/" + action
}

// get runs one GET with the credential and a deadline; it returns the status and at most
// limit bytes of body.
func (c *client) get(ctx context.Context, u string, timeout time.Duration, limit int64) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.credential)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if int64(len(b)) > limit {
		return resp.StatusCode, nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return resp.StatusCode, b, nil
}

// bundle downloads the node's configuration bundle.
func (c *client) bundle(ctx context.Context) ([]byte, error) {
	code, b, err := c.get(ctx, c.nodeURL(slapos.ActionConfig), time.Minute, maxBundle)
	if err != nil {
		return nil, fmt.Errorf("config bundle: %w", err)
	}
	switch code {
	case http.StatusOK:
		return b, nil
	case http.StatusUnauthorized:
		return nil, errUnauthorized
	}
	return nil, fmt.Errorf("config bundle: HTTP %d: %s", code, firstLine(b))
}

// watch long-polls the watch route for up to wait.
func (c *client) watch(ctx context.Context, wait time.Duration) (slapos.WatchAnswer, error) {
	var a slapos.WatchAnswer
	u := c.nodeURL(slapos.ActionWatch) + "?wait=" + strconv.FormatFloat(wait.Seconds(), 'f', -1, 64)
	code, b, err := c.get(ctx, u, wait+15*time.Second, 1<<20)
	if err != nil {
		return a, err
	}
	switch code {
	case http.StatusOK:
		if err := json.Unmarshal(b, &a); err != nil {
			return a, fmt.Errorf("watch answer: %w", err)
		}
		return a, nil
	case http.StatusNotFound, http.StatusNotImplemented, http.StatusMethodNotAllowed:
		return a, errNoWatch
	case http.StatusUnauthorized:
		return a, errUnauthorized
	}
	return a, fmt.Errorf("watch: HTTP %d: %s", code, firstLine(b))
}

// need asks a legacy need-* route. It reports whether the action is needed: an HTTP 200
// whose body starts with "200" (replication-manager answered 200 with a "503 -..." body for
// need-restart and the like; this manager answers 503).
func (c *client) need(ctx context.Context, action string) (bool, error) {
	code, b, err := c.get(ctx, c.nodeURL(action), 30*time.Second, 4096)
	if err != nil {
		return false, err
	}
	switch {
	case code == http.StatusUnauthorized:
		return false, errUnauthorized
	case code == http.StatusOK:
		return strings.HasPrefix(strings.TrimSpace(string(b)), "200"), nil
	case code == http.StatusInternalServerError || code == http.StatusServiceUnavailable:
		// "No start needed", "Not a Valid Server", ...: nothing to do. An unknown cluster or
		// server is also a 500: say so, it will not fix itself.
		if s := string(b); strings.Contains(s, "No cluster") || strings.Contains(s, "No valid server") {
			return false, fmt.Errorf("%s: %s", action, firstLine(b))
		}
		return false, nil
	}
	return false, fmt.Errorf("%s: HTTP %d: %s", action, code, firstLine(b))
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
