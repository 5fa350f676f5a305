package slapos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
)

// Cookie is a one-bit request for a node's partition agent: an empty file
// "<node dir>/@<cookie>" exists or not (repman-compat.md B).
type Cookie string

// The cookies replication-manager knows; the file is "@" + the name.
const (
	CookieProv       Cookie = "cookie_prov"
	CookieUnprov     Cookie = "cookie_unprov"
	CookieWaitStart  Cookie = "cookie_waitstart"
	CookieWaitStop   Cookie = "cookie_waitstop"
	CookieRestart    Cookie = "cookie_restart"
	CookieReprov     Cookie = "cookie_reprov"
	CookieConfig     Cookie = "cookie_config"
	CookieWaitBackup Cookie = "cookie_waitbackup"
)

func (c Cookie) file() (string, error) {
	s := string(c)
	if !strings.HasPrefix(s, "cookie_") || len(s) == len("cookie_") {
		return "", fmt.Errorf("cookie %q: name must start with cookie_", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return "", fmt.Errorf("cookie %q: character %q not allowed", s, r)
		}
	}
	return "@" + s, nil
}

// WorkingDir is the directory holding the clusters' node directories
// (configurator.WorkingDir: replication-manager's rule, the SlapOS wrapper passes both keys).
func WorkingDir(s *config.Settings) string { return configurator.WorkingDir(s) }

// NodeDirName is a node's directory name: "<Host>_<Port>" with IPv6 hosts in brackets,
// e.g. "[2001:db8::1]_2099" (replication-manager's layout, which scripts may rely on).
func NodeDirName(addr ipv6.HostPort) string {
	return addr.HostBracketed() + "_" + strconv.Itoa(addr.Port)
}

// Node is the working directory of one database or proxy: <working dir>/<cluster>/<Host>_<Port>.
// Its cookies are files in it. Operations are safe between processes: creating and removing
// an empty file are atomic, and Take lets exactly one caller consume a cookie.
type Node struct{ Dir string }

// NodeIn returns the node directory of addr in cluster under workDir. The cluster name must
// be usable as one path element.
func NodeIn(workDir, cluster string, addr ipv6.HostPort) (Node, error) {
	if cluster == "" || cluster == "." || cluster == ".." || strings.ContainsAny(cluster, `/\`+"\x00") {
		return Node{}, fmt.Errorf("cluster name %q cannot name a directory", cluster)
	}
	if workDir == "" {
		return Node{}, errors.New("empty working directory (monitoring-datadir)")
	}
	name := NodeDirName(addr)
	if strings.ContainsAny(name, `/\`+"\x00") || strings.HasPrefix(name, ".") {
		return Node{}, fmt.Errorf("address %s cannot name a directory", addr)
	}
	return Node{Dir: filepath.Join(workDir, cluster, name)}, nil
}

func (n Node) path(c Cookie) (string, error) {
	f, err := c.file()
	if err != nil {
		return "", err
	}
	return filepath.Join(n.Dir, f), nil
}

// Set creates the cookie (and the node directory); setting a set cookie is a no-op.
func (n Node) Set(c Cookie) error {
	p, err := n.path(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return fmt.Errorf("set %s: %w", c, err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("set %s: %w", c, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("set %s: %w", c, err)
	}
	cookieChanged.notify() // wake the watching agents (watch.go)
	return nil
}

// Has reports whether the cookie is set.
func (n Node) Has(c Cookie) bool {
	p, err := n.path(c)
	if err != nil {
		return false
	}
	_, err = os.Lstat(p)
	return err == nil
}

// Delete removes the cookie; deleting an absent cookie is a no-op.
func (n Node) Delete(c Cookie) error {
	_, err := n.Take(c)
	return err
}

// Take consumes the cookie: it reports true to exactly one caller when the cookie was set,
// however many ask at once (the removal is the test).
func (n Node) Take(c Cookie) (bool, error) {
	p, err := n.path(c)
	if err != nil {
		return false, err
	}
	switch err := os.Remove(p); {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("delete %s: %w", c, err)
	}
}

// Cookies lists the cookies set, sorted.
func (n Node) Cookies() ([]Cookie, error) {
	ents, err := os.ReadDir(n.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cookies: %w", err)
	}
	var out []Cookie
	for _, e := range ents {
		if name := e.Name(); strings.HasPrefix(name, "@cookie_") && !e.IsDir() {
			out = append(out, Cookie(name[1:]))
		}
	}
	return out, nil
}
